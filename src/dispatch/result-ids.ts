// One runner-result webhook-id, one proposal: the global replay guard for POST …/result.
// (Each proposal's Durable Object also refuses an id it has seen; this catches a result
// captured on one proposal and posted to another, which no single object could see.)

export type ResultIdClaim = "new" | "same_proposal" | "other_proposal";

export async function claimResultId(
  db: D1Database,
  webhookId: string,
  proposalId: string,
  now: number,
): Promise<ResultIdClaim> {
  const inserted = await db
    .prepare(
      `INSERT INTO runner_result_ids (webhook_id, proposal_id, at_ms) VALUES (?1, ?2, ?3) ON CONFLICT (webhook_id) DO NOTHING`,
    )
    .bind(webhookId, proposalId, now)
    .run();
  if (inserted.meta.changes > 0) return "new";
  const owner = await db
    .prepare(`SELECT proposal_id FROM runner_result_ids WHERE webhook_id = ?1`)
    .bind(webhookId)
    .first<{ proposal_id: string }>();
  return owner?.proposal_id === proposalId ? "same_proposal" : "other_proposal";
}
