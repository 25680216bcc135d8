// Package api is cdcsync's REST API, shaped like Kafka Connect's so its
// users feel at home. It serves, on the worker's http_addr:
//
//	GET  /topologies                   the topologies and their state
//	GET  /topologies/{name}            the compiled plan (topology.PlanJSON)
//	GET  /topologies/{name}/status     state, workers and partitions (Status)
//	PUT  /topologies/{name}/pause      pause on every worker (202, Action)
//	PUT  /topologies/{name}/resume     resume on every worker (202, Action)
//	POST /topologies/{name}/restart    restart on every worker (202, Action)
//
// Every response is JSON; an error is {"error_code": N, "message": "..."}
// with N the HTTP status. State-changing routes need
// "Authorization: Bearer <api_token>": 401 without it or with a wrong one,
// 403 when the worker has no api_token (they are then refused, never
// open). Read-only routes are open unless api_token_read is set; either
// token then reads.
//
// The package knows nothing of Kafka: a Backend (the worker) answers. The
// worker carries pause, resume and restart to every worker of the
// topology over its control topic (processor/control.go).
package api
