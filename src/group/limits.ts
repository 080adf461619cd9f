// The limits of grouped proposals (docs/grouping.md): how long a group key may be, how many items one card holds,
// how long a card takes new items, and how often it is edited. Numbers only, so the API schema can name them.

/** A group_key's length: a label, not a document. */
export const GROUP_KEY_MAX_CHARS = 64;
/** Items on one card: two blocks each, inside Slack's 50 blocks a message with room for the card's own. */
export const GROUP_CARD_MAX_ITEMS = 20;
/** A card takes new items for this long after it opened (an alert storm), then the next proposal opens a new one. */
export const GROUP_WINDOW_SECONDS = 600;
/** At most one chat.update of a card this often: a storm of changes is coalesced into one edit (Slack's ~1/s). */
export const GROUP_UPDATE_INTERVAL_MS = 1_000;
