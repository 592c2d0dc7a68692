import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { ApiSettingsError } from './api-errors.js';

/** TLS material as files or bytes: the shape of the etcd client's TLS options, so those serve as the default. */
export interface ApiTlsSource {
  certFile?: string;
  keyFile?: string;
  caFile?: string;
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

/** --api-cert, --api-key, --api-ca as given. */
export interface ApiTlsFlags {
  apiCert?: string | undefined;
  apiKey?: string | undefined;
  apiCa?: string | undefined;
}

/** Loaded TLS material: a certificate, its key, and the CA bundle peers must be signed by. */
export interface ApiTls {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

/**
 * The TLS material of the agent API: the --api-* flags (all three or none), else the etcd client
 * certificate, key and CA when all three are there (the cluster's certificates). Undefined: none,
 * so the API stays on its unix socket. Throws ApiSettingsError for half a set of flags.
 */
export function resolveApiTls(flags: ApiTlsFlags, fallback: ApiTlsSource | undefined): ApiTlsSource | undefined {
  const given = [flags.apiCert, flags.apiKey, flags.apiCa].filter((v) => v !== undefined).length;
  if (given === 3) return { certFile: flags.apiCert!, keyFile: flags.apiKey!, caFile: flags.apiCa! };
  if (given > 0) throw new ApiSettingsError('give --api-cert, --api-key and --api-ca together (a certificate, its key and the CA that signs every agent\'s and client\'s certificate), or none of them to use the etcd client certificate (--etcd-cert, --etcd-key, --etcd-cacert)');
  if (!fallback) return undefined;
  const complete = (fallback.cert ?? fallback.certFile) !== undefined && (fallback.key ?? fallback.keyFile) !== undefined && (fallback.ca ?? fallback.caFile) !== undefined;
  return complete ? fallback : undefined;
}

function readPart(bytes: Buffer | undefined, file: string | undefined, what: string): Buffer {
  if (bytes) return bytes;
  try {
    return readFileSync(file!);
  } catch (err) {
    throw new ApiSettingsError(`cannot read the agent API ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}; check the path (--api-cert/--api-key/--api-ca, or the --etcd-* ones they default to)`);
  }
}

/** Reads the files of a source; throws ApiSettingsError naming the file that cannot be read. */
export function loadTls(source: ApiTlsSource): ApiTls {
  const tls = {
    cert: readPart(source.cert, source.certFile, 'certificate'),
    key: readPart(source.key, source.keyFile, 'key'),
    ca: readPart(source.ca, source.caFile, 'CA'),
  };
  caCertificates(tls.ca); // fails early on a CA file that holds no certificate
  return tls;
}

/** The certificates of a PEM bundle; throws ApiSettingsError when it holds none. */
export function caCertificates(pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new ApiSettingsError('the agent API CA file holds no PEM certificate: give the cluster CA (ca.crt of deploy/etcd/make-certs.sh)');
  return blocks.map((b) => new X509Certificate(b));
}

/**
 * Why a peer's certificate is not one of the cluster's, or undefined when a CA of the bundle signed
 * it and it is valid now. Hand-written because OpenSSL's own check also demands the serverAuth
 * purpose, and the cluster's one client certificate (clientAuth only, no host names) is what every
 * agent serves with: membership is "signed by the cluster CA", not a host name.
 */
export function peerProblem(peer: X509Certificate | undefined, cas: readonly X509Certificate[], now: Date = new Date()): string | undefined {
  if (!peer) return 'it presented no certificate';
  const issuer = cas.find((ca) => peer.checkIssued(ca) && peer.verify(ca.publicKey));
  if (!issuer) return `its certificate (${peer.subject.replace(/\n/g, ', ')}) is not signed by the cluster CA given with --api-ca (or --etcd-cacert)`;
  if (now < new Date(peer.validFrom) || now > new Date(peer.validTo)) return `its certificate is valid only from ${peer.validFrom} to ${peer.validTo}`;
  if (peer.ca) return 'it presented a CA certificate, not an agent\'s';
  return undefined;
}
