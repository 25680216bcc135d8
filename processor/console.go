package processor

import (
	"context"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/console"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/topology"
)

// newConsole builds the web console and its DLQ endpoints, served by the
// worker's HTTP server (see processor/console).
func (w *Worker) newConsole(plans []*topology.Plan) (*console.Console, error) {
	return console.New(console.Config{
		Plans:   plans,
		Connect: w.consoleClient,
		Tokens:  w.apiOpts,
		Log:     w.log.Named("console"),
	})
}

// consoleClient opens the client of one console request: the worker's
// client settings (brokers, TLS, SASL), a replay producer's settings, and
// short fetch waits, since a DLQ read finds a partition's end by waiting
// out a fetch.
func (w *Worker) consoleClient(ctx context.Context) (sarama.Client, error) {
	sc, err := w.cfg.saramaConfig("console")
	if err != nil {
		return nil, err
	}
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond
	dlq.ConfigureReplayProducer(sc)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return sarama.NewClient(w.cfg.Brokers, sc)
}
