package processor

import (
	"sync"

	"github.com/IBM/sarama"
)

// attempts counts, per source record, the failed attempts to process it
// before it goes to the DLQ, for the cdcsync.errors.attempts header: a
// record that failed transiently (and was consumed again after the
// session restart) or whose exactly_once transaction aborted is tried
// again, and each try counts. Only records that failed are held, and the
// set is bounded (maxAttemptsHeld: it starts afresh when full), so the
// records that failed and later succeeded cost little.
type attempts struct {
	mu     sync.Mutex
	failed map[sourcePos]int
}

const maxAttemptsHeld = 10_000

// fail notes one failed attempt at src.
func (a *attempts) fail(src *sarama.ConsumerMessage) {
	if src == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failed == nil || len(a.failed) >= maxAttemptsHeld {
		a.failed = map[sourcePos]int{}
	}
	a.failed[sourcePos{src.Topic, src.Partition, src.Offset}]++
}

// of returns the number of the attempt now being made at src: 1 when it
// never failed before. src stays held: its DLQ record may itself be
// refused inside a transaction, and the record is then tried once more.
func (a *attempts) of(src *sarama.ConsumerMessage) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failed[sourcePos{src.Topic, src.Partition, src.Offset}] + 1
}
