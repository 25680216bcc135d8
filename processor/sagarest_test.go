package processor

import (
	"strings"
	"testing"

	"github.com/cdcsync/cdcsync/topology"
)

// A saga topology's ACLs are its own group, transactional IDs and topics.
// Regression: RequiredACLs listed a sink topology's (group cdcsync.<name>,
// the ledger topic, an empty sink topic) for a saga topology.
func TestSagaRequiredACLs(t *testing.T) {
	plan, err := topology.Parse("s.yaml", []byte(`name: orders
saga:
  trigger: {topic: shop.orders}
  steps:
    - name: stock
      command: {topic: stock.commands, type: Reserve}
      reply_topic: stock.replies
      compensation: {topic: stock.commands, type: Release}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range RequiredACLs(plan, true) {
		got = append(got, a.Resource+" "+a.Pattern+" "+a.Name+" "+a.Operation)
	}
	want := []string{
		"Group LITERAL cdcsync-saga-orders Read",
		"TransactionalId PREFIXED cdcsync-saga-orders-saga- Write",
		"Topic LITERAL shop.orders Read",
		"Topic LITERAL stock.replies Read",
		"Topic LITERAL stock.replies Create",
		"Topic LITERAL stock.commands Write",
		"Topic LITERAL stock.commands Create",
		"Topic LITERAL orders.saga Read",
		"Topic LITERAL orders.saga Write",
		"Topic LITERAL orders.saga Create",
		"Topic LITERAL dlq.orders Write",
		"Topic LITERAL dlq.orders Create",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("ACLs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
