// Package console serves cdcsync's web console and the dead-letter
// endpoints it reads, on the worker's HTTP server (http_addr).
//
// # Pages
//
// The pages are HTML templates and one plain JavaScript file and one
// style sheet, embedded in the binary (go:embed): no build step, no CDN,
// nothing fetched from elsewhere. The server renders each page's frame
// (the topology names, links, empty tables); the script fills the tables
// from the JSON endpoints, so every figure on screen comes from the same
// JSON an operator can curl:
//
//	GET /                                       topologies and their state
//	GET /console/topologies/{name}              state, pause/resume/restart, partitions (lag, breaker,
//	                                            owner; polled every 2 s), DLQ summary and records,
//	                                            replay with a dry-run preview first, the plan
//	GET /console/topologies/{name}/dlq/{p}/{o}  one DLQ record: origin, headers, readable key and value
//
// The state, partitions and plan come from the REST API (/topologies/...,
// processor/api); the DLQ views from the endpoints below.
//
// # DLQ endpoints
//
//	GET  /topologies/{name}/dlq                           summary: total, by stage, by exception, by both
//	GET  /topologies/{name}/dlq/records                   records (filters: stage, exception, reason, key; limit)
//	GET  /topologies/{name}/dlq/records/{partition}/{offset}  one record with every header, key and value
//	POST /topologies/{name}/dlq/replay?dry_run=true|false  count and preview; with dry_run=false, replay
//
// They read the topology's DLQ topic from its oldest offsets to the
// high-water marks taken at the request (dlq.Read, dlq.ReadAt), as
// `cdcsync dlq inspect` does. A replay takes the same code path as
// `cdcsync dlq replay`: dlq.CheckTargets (never into a DLQ or ledger
// topic of a loaded topology), then dlq.ReplayAll, which writes each
// original record back to its source partition; the dedup ledger makes a
// second replay of the same record harmless. The replay filters are the
// list's, so what the dry run counts is what the replay writes; the
// console sends the previewed count as ?expect=N, and a replay whose
// selection no longer counts N is refused (409) rather than writing what
// was not shown.
//
// One request keeps at most Config.MaxEntries dead letters in memory
// (default 100,000); past that, answers cover the first ones and say so
// (truncated).
//
// # Tokens
//
// A replay (dry_run=false) changes state: like pause, resume and restart
// it needs the header "Authorization: Bearer <api_token>", and is refused
// with 401 without it, or with 403 when no api_token is configured. A dry run and the
// reads are open unless api_token_read is set, in which case they need
// that token (or api_token). The console keeps the token the operator
// types in the browser's sessionStorage (gone with the tab) and sends it
// with every call; a 401 is shown on the page.
//
// Every response of the endpoints is JSON; an error is the REST API's
// {"error_code": N, "message": "..."} with 400 (bad parameter), 401/403
// (token), 404 (unknown topology or no such record), 405 (method), 409 (a
// replay target refused) or 502 (the brokers failed). The tokens are
// checked by the REST API's guard (api.Auth), so every route follows the
// same rules.
package console
