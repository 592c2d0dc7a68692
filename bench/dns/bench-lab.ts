// The benchmarks use the same throwaway namespace lab as the DNS integration tests.
export { DnsLab as BenchLab } from '../../test/dns/lab.js';
