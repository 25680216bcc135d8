// Package ingress is the worker's webhook endpoint: it verifies signed
// SaaS webhook requests and stores each one durably in its topology's raw
// topic before it answers 2xx. A topology with source.format: webhook
// then reads the raw topic (processor/cdc.WebhookDecoder), so a webhook
// delivery becomes a typed change like any other, deduplicated by its
// delivery ID. docs/webhooks.md is the user guide.
//
// # Schemes
//
// A Verifier checks one endpoint's requests under one Scheme (stripe,
// github, shopify, standard-webhooks, hmac-sha256), always an HMAC-SHA256
// over the raw body compared in constant time (hmac.Equal) against every
// active secret, so a secret rotates without a rejection. Timestamped
// schemes check the timestamp only after a signature matched. Secrets are
// never logged nor put in an error.
//
// # Acknowledgement
//
// Server.ServeHTTP answers 2xx only after Producer.Produce returned nil:
// the broker acknowledged the raw record with acks=all. Everything else is
// an error answer counted in cdcsync_ingress_rejected_total{topology,
// reason}: 401 (no detail), 400 with the reason, 408, 413, 405, 404, and
// 503 with Retry-After when the broker did not acknowledge in time or too
// many requests are in flight. A 503 whose record was stored late is sent
// again by the provider and dropped by the ledger.
//
// # Goroutines
//
// Server.Serve owns the http.Server (one goroutine per connection, as
// net/http does) and returns after Shutdown has waited for the requests
// in flight. KafkaProducer owns one goroutine that routes the async
// producer's acknowledgements to the waiting requests; Close ends it after
// the producer flushed.
package ingress
