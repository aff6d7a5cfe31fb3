// TLS for every client transport: the options a user gives (--cacert, --insecure) as Bun's, and
// the hint a certificate failure carries. Apart from client.ts so the transports need not load it.

export interface TlsOptions {
  /** PEM text of the certificates to trust besides the system's (--cacert). */
  ca?: string;
  /** false: do not check the server's certificate (--insecure). */
  rejectUnauthorized?: boolean;
}

/** Bun's `tls` option for connect/fetch/WebSocket, or nothing when the defaults apply. */
export function bunTls(tls: TlsOptions | undefined): { ca?: string; rejectUnauthorized?: boolean } | undefined {
  if (!tls || (tls.ca === undefined && tls.rejectUnauthorized !== false)) return undefined;
  return { ...(tls.ca !== undefined ? { ca: tls.ca } : {}), ...(tls.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}) };
}

/** A certificate failure, with the way to trust a self-signed server. */
export function certificateHint(reason: string): string {
  return /certificate|self[- ]signed|unable to verify|CERT_/i.test(reason)
    ? `${reason} (the server's certificate is not trusted: trust it with --cacert FILE or MSGBUS_CACERT)`
    : reason;
}
