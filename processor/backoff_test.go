package processor

import (
	"math"
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	const initial, maxD = 100 * time.Millisecond, 5 * time.Second
	for attempt := 0; attempt < 70; attempt++ {
		ceiling := maxD
		if attempt < 6 { // 100ms·2^5 = 3.2s < 5s
			ceiling = initial << attempt
		}
		var peak time.Duration
		for range 200 {
			d := backoff(attempt, initial, maxD)
			if d < 0 || d >= ceiling {
				t.Fatalf("backoff(%d) = %v, want in [0, %v)", attempt, d, ceiling)
			}
			peak = max(peak, d)
		}
		// 200 uniform draws all below half the ceiling: p = 2^-200.
		if peak < ceiling/2 {
			t.Errorf("backoff(%d): largest of 200 draws %v, want some above %v", attempt, peak, ceiling/2)
		}
	}
}

func TestBackoffMultEdges(t *testing.T) {
	for _, tc := range []struct {
		name         string
		attempt      int
		initial, max time.Duration
		mult         float64
		ceiling      time.Duration // results are in [0, ceiling); 0 means always 0
	}{
		{"zero initial", 5, 0, time.Second, 2, 0},
		{"negative initial", 5, -time.Second, time.Second, 2, 0},
		{"zero max", 3, time.Second, 0, 2, 0},
		{"initial above max", 0, 10 * time.Second, time.Second, 2, time.Second},
		{"mult below 1 is 1", 10, time.Second, time.Minute, 0.5, time.Second},
		{"mult 1 never grows", 50, time.Second, time.Minute, 1, time.Second},
		{"mult 1.5", 2, time.Second, time.Minute, 1.5, 2250 * time.Millisecond},
		{"huge attempt stays at max", math.MaxInt32, time.Millisecond, time.Hour, 2, time.Hour},
		{"one nanosecond", 0, 1, time.Second, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 500 {
				d := backoffMult(tc.attempt, tc.initial, tc.max, tc.mult)
				if tc.ceiling == 0 {
					if d != 0 {
						t.Fatalf("got %v, want 0", d)
					}
					continue
				}
				if d < 0 || d >= tc.ceiling {
					t.Fatalf("got %v, want in [0, %v)", d, tc.ceiling)
				}
			}
		})
	}
}

// TestBackoffGrows checks that the mean delay doubles per attempt until
// the cap: full jitter's mean is half the ceiling.
func TestBackoffGrows(t *testing.T) {
	const n = 4000
	mean := func(attempt int) float64 {
		var sum float64
		for range n {
			sum += float64(backoff(attempt, 10*time.Millisecond, 10*time.Second))
		}
		return sum / n
	}
	prev := 0.0
	for attempt := 0; attempt <= 12; attempt++ {
		m := mean(attempt)
		ceiling := math.Min(float64(10*time.Millisecond)*math.Pow(2, float64(attempt)), float64(10*time.Second))
		// The mean of n uniform draws has sd ceiling/sqrt(12n) ≈ 0.0046·ceiling.
		if math.Abs(m-ceiling/2) > 0.03*ceiling {
			t.Errorf("attempt %d: mean %v, want about %v", attempt, time.Duration(m), time.Duration(ceiling/2))
		}
		if attempt <= 9 && m <= prev { // 10ms·2^10 > 10s: capped from attempt 10
			t.Errorf("attempt %d: mean %v did not grow from %v", attempt, time.Duration(m), time.Duration(prev))
		}
		prev = m
	}
}

// TestBackoffFullJitterUniform checks that delays spread evenly over
// [0, ceiling): ten equal buckets each get about a tenth of the draws.
func TestBackoffFullJitterUniform(t *testing.T) {
	const n, buckets = 50000, 10
	ceiling := time.Second
	var counts [buckets]int
	for range n {
		d := backoffMult(3, 125*time.Millisecond, ceiling, 2) // 125ms·2³ = 1s
		counts[int(d*buckets/ceiling)]++
	}
	// Each bucket: mean 5000, sd ≈ 67; allow ±6 sd.
	for i, c := range counts {
		if c < 4600 || c > 5400 {
			t.Errorf("bucket %d: %d of %d draws, want about %d (counts %v)", i, c, n, n/buckets, counts)
		}
	}
}
