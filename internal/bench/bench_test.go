package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cdcsync/cdcsync/internal/embedded"
)

// The passthrough that served as the ceiling shared one sarama client
// between its consumer group and its producer, so produce requests waited
// behind the broker's 500 ms fetch long-polls and the ceiling came out
// 3–4× too low; Run now measures a default and a durable passthrough,
// each with its own clients, and gives every ratio against the durable one.
func TestRunReportsBothPassthroughsAndRatiosToDurable(t *testing.T) {
	st, err := embedded.Start(embedded.Options{NoRegistry: true, Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out strings.Builder
	const events = 3000
	res, err := Run(ctx, Options{Brokers: st.Brokers(), Events: events, Partitions: 4, Rounds: 1}, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if res.Passthrough <= 0 || res.Durable <= 0 || res.CDCSync <= 0 {
		t.Fatalf("rates: default %v, durable %v, at_least_once %v", res.Passthrough, res.Durable, res.CDCSync)
	}
	if want := res.CDCSync / res.Durable; res.Ratio != want {
		t.Errorf("Ratio = %v, want at_least_once/durable = %v", res.Ratio, want)
	}
	if res.Out+res.Duplicates != events {
		t.Errorf("at_least_once: %d out + %d duplicates, want %d records", res.Out, res.Duplicates, events)
	}
	for _, line := range []string{"round 1: passthrough-default", "round 1: passthrough-durable", "round 1: at_least_once",
		"× durable  peak RSS", "1.00× durable  peak RSS"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
	for _, side := range []Side{SideDefault, SideDurable, SideAtLeastOnce} {
		rs := res.Sides[side]
		if len(rs) != 1 || rs[0].Duration <= 0 || rs[0].PeakRSS <= 0 {
			t.Errorf("%s: %+v, want one round with a duration and a peak RSS", side, rs)
		}
	}
	// The worker's clock starts at its first group join, as a
	// passthrough's does: its start-up before (clients, topics, the
	// control topic; about 0.7 s on a real Kafka broker, which creates
	// topics slowly) is reported apart, not counted in the rate.
	if rs := res.Sides[SideAtLeastOnce]; len(rs) == 1 && (rs[0].Startup <= 0 || !strings.Contains(out.String(), "start-up before the join")) {
		t.Errorf("at_least_once: start-up %v, want > 0 and printed:\n%s", rs[0].Startup, out.String())
	}
	if n := strings.Count(out.String(), "× durable"); n != 3 {
		t.Errorf("%d ratios to the durable passthrough, want 3:\n%s", n, out.String())
	}
}
