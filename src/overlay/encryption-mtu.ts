import { ESP_ICV_BITS } from '../sandbox/xfrm-codec.js';
import { isEncrypted } from './encryption-plan.js';

/**
 * How much ESP in transport mode with rfc4106(gcm(aes)) grows a VXLAN datagram: SPI and sequence
 * number (8), the explicit IV (8), pad length and next header (2), the ICV (16), and at most 3
 * bytes of padding to a 4-byte boundary.
 */
export const ESP_OVERHEAD = 8 + 8 + 2 + ESP_ICV_BITS / 8 + 3;

/**
 * The underlay MTU an overlay may fill with VXLAN: all of it on a plain network, less ESP's growth
 * on an encrypted one. Without it every full-size frame of an encrypted network leaves as two ESP
 * fragments (the kernel fragments after the transform): measured in the kernel VM, about half the
 * ESP packets on the wire were fragments and throughput 35 % lower than with frames that fit.
 */
export function overlayUnderlayMtu(underlayMtu: number, options: Readonly<Record<string, string>>): number {
  return isEncrypted(options) ? underlayMtu - ESP_OVERHEAD : underlayMtu;
}
