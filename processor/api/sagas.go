package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/cdcsync/cdcsync/processor/saga"
)

// ErrNotSaga is returned by SagaBackend.Sagas for a topology that is not a
// saga topology; the API answers 404.
var ErrNotSaga = errors.New("api: not a saga topology")

// SagaBackend is the part of the backend that serves saga topologies'
// views (issue 17). The worker implements it; Register adds the routes
// when the backend does.
type SagaBackend interface {
	// Sagas reads the topology's state topic to its end (read_committed)
	// and returns every saga it holds; ErrUnknownTopology or ErrNotSaga
	// for a name that is not one of the worker's saga topologies.
	Sagas(ctx context.Context, name string) ([]*saga.State, error)
}

// SagaList is the body of GET /topologies/{name}/sagas.
type SagaList struct {
	Topology string         `json:"topology"`
	Sagas    []saga.Summary `json:"sagas"`
}

func registerSagas(mux *http.ServeMux, h *handlers) {
	sb, ok := h.b.(SagaBackend)
	if !ok {
		return
	}
	read := func(rw http.ResponseWriter, r *http.Request) ([]*saga.State, bool) {
		name := r.PathValue("name")
		states, err := sb.Sagas(r.Context(), name)
		if errors.Is(err, ErrNotSaga) {
			WriteError(rw, http.StatusNotFound, fmt.Sprintf("topology %q is not a saga topology", name))
			return nil, false
		}
		if err != nil {
			h.fail(rw, name, err)
			return nil, false
		}
		return states, true
	}
	// ?state=failed (comma-separated; also running, compensating,
	// completed, compensated, in_flight, all).
	mux.HandleFunc("/topologies/{name}/sagas", Only(http.MethodGet, h.Read(func(rw http.ResponseWriter, r *http.Request) {
		if _, err := saga.Filter(nil, r.URL.Query().Get("state")); err != nil {
			WriteError(rw, http.StatusBadRequest, "state: "+err.Error())
			return
		}
		states, ok := read(rw, r)
		if !ok {
			return
		}
		states, _ = saga.Filter(states, r.URL.Query().Get("state"))
		out := SagaList{Topology: r.PathValue("name"), Sagas: make([]saga.Summary, 0, len(states))}
		for _, s := range states {
			out.Sagas = append(out.Sagas, saga.Summarize(s))
		}
		writeJSON(rw, http.StatusOK, out)
	})))
	mux.HandleFunc("/topologies/{name}/sagas/{id}", Only(http.MethodGet, h.Read(func(rw http.ResponseWriter, r *http.Request) {
		states, ok := read(rw, r)
		if !ok {
			return
		}
		id := r.PathValue("id")
		for _, s := range states {
			if s.ID == id {
				writeJSON(rw, http.StatusOK, s)
				return
			}
		}
		WriteError(rw, http.StatusNotFound, fmt.Sprintf("no saga %q in %s.saga (never started, or tombstoned after saga.retention)", id, r.PathValue("name")))
	})))
}
