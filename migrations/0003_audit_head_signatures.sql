-- SPEC 12: each flush signs its chain's head with AUDIT_SIGNING_KEY (Ed25519, a key D1 never sees). The
-- signature sits on the flush's last row: `<key id>:<base64 signature>` of {proposal_id, idx, hash}; NULL on
-- every other row. Whoever rewrites a chain in D1 and recomputes its hashes cannot sign the new head.
ALTER TABLE audit_events ADD COLUMN head_sig TEXT;
