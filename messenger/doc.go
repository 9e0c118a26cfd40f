// Package messenger is the Messenger Platform protocol as Parley speaks it.
//
// It covers three concerns, each in its own file:
//
//   - Webhooks: [VerifySignature] checks Meta's X-Hub-Signature-256 over the raw
//     body (never a re-serialisation), then [ParseWebhook] turns the body into
//     normalized [Event] values, keeping each event's raw JSON for audit.
//   - The Graph API: [Client] calls the Send API, the Attachment Upload API,
//     the user profile, debug_token and subscribed_apps endpoints with a
//     page's [PageAuth]; [DetectFile] and [MaxAttachmentSize] are Meta's
//     limits on the files a page sends.
//   - Errors: Meta's error body becomes a [GraphError], whose [ErrorClass] is
//     decided by code and subcode only, and tells whether a retry can help.
//
// The package is a library: it logs nothing and never puts an access token or
// app secret into an error string.
package messenger
