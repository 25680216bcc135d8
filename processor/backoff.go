package processor

import (
	"math/rand/v2"
	"time"
)

// backoff is exponential backoff (doubling) with full jitter.
func backoff(attempt int, initial, max time.Duration) time.Duration {
	return backoffMult(attempt, initial, max, 2)
}

// backoffMult is exponential backoff with full jitter: a uniform random
// duration in [0, min(max, initial·mult^attempt)). Full jitter spreads the
// retries of many workers that failed together.
func backoffMult(attempt int, initial, max time.Duration, mult float64) time.Duration {
	if mult < 1 {
		mult = 1
	}
	d := float64(initial)
	for i := 0; i < attempt && d < float64(max); i++ {
		d *= mult
	}
	if d > float64(max) {
		d = float64(max)
	}
	if d < 1 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)))
}
