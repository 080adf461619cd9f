// Hosts that never leave the machine: the only ones plain http may reach (tests, local mode), and the only ones the
// local Slack stand-in answers on. Free of Worker-only imports: the operator scripts use it too.

/** `localhost`, `::1` (with or without a URL's brackets) or an address in 127.0.0.0/8, in any letter case. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
