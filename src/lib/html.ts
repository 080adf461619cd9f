// HTML escaping for every page and message signoff writes as HTML (the link pages, the mails with approval links).

/** Text as HTML content or a quoted attribute value: `& < > " '` as entities, nothing else touched. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}
