// A lenient multipart/form-data reader for the stand-ins. grammy writes part headers without
// spaces and file names without quotes (`content-disposition:form-data;name="x";filename=a.png`),
// which real Telegram accepts but undici's FormData parser rejects, so the stand-ins parse by hand.

export interface Part {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer;
}

export function parseMultipart(body: Buffer, contentType: string): Part[] {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  if (!boundary) throw new Error("multipart body without a boundary");
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]!.trim()}`);
  const parts: Part[] = [];
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === "--") break;
    const next = body.indexOf(delimiter, start);
    if (next < 0) break;
    // Between the delimiters: CRLF, headers, CRLF CRLF, data, CRLF.
    const part = body.subarray(start + 2, next - 2);
    const split = part.indexOf("\r\n\r\n");
    const headers = part.subarray(0, split).toString("utf8");
    const data = part.subarray(split + 4);
    const disposition = /content-disposition:\s*([^\r\n]*)/i.exec(headers)?.[1] ?? "";
    const name = /(?:^|;)\s*name="?([^";]+)"?/i.exec(disposition)?.[1];
    const filename = /filename="?([^";]+)"?/i.exec(disposition)?.[1];
    const type = /content-type:\s*([^\r\n]*)/i.exec(headers)?.[1];
    if (name) parts.push({ name, data: Buffer.from(data), ...(filename ? { filename } : {}), ...(type ? { contentType: type.trim() } : {}) });
    at = next;
  }
  return parts;
}
