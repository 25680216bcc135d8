package demo

import (
	"fmt"
	"time"
)

// Record is one source record of a data set.
type Record struct {
	Topic string
	Key   []byte
	Value []byte // nil for a tombstone
}

// Expect is what a correct run of the demo topologies makes of a data set.
// The tests and the demo's summary check the workers against it.
type Expect struct {
	Records    int // source records in all
	Duplicates int // redelivered changes and unchanged re-snapshot rows
	Poison     int // records that must go to the DLQ
	Tombstones int
	Echoes     int // changes dropped whole because no owned field changed
}

// names for the generated people; combined they make varied rows.
var (
	firstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis"}
	lastNames  = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Ritchie"}
	cities     = []string{"Berlin", "Lyon", "Porto", "Gdansk", "Utrecht", "Bergen", "Tartu", "Graz"}
)

func contact(id int64, at time.Time) *Contact {
	i := int(id)
	return &Contact{
		ID:        id,
		FirstName: firstNames[i%len(firstNames)],
		LastName:  lastNames[(i/len(firstNames))%len(lastNames)],
		Email:     fmt.Sprintf("contact%d@example.com", id),
		Phone:     fmt.Sprintf("+49 30 %07d", 1000000+id*7),
		Address:   fmt.Sprintf("%d Main Street", 1+id%97),
		City:      cities[i%len(cities)],
		Balance:   id*1234 - 5000,
		UpdatedAt: at,
	}
}

// Contacts builds the demo's data set: an ERP and a CRM that share n
// customers. Field ownership: the CRM owns names and email; the ERP owns
// phone, address, city and balance.
//
// In order, it holds: the initial snapshot of both systems; ERP updates of
// owned fields; an ERP update that also touches the CRM-owned email (the
// email is dropped by authority); CRM email updates; the echoes of those
// sync writes (ERP CDC touching only CRM-owned fields, and CRM CDC
// touching only ERP-owned fields), which must be dropped; redelivered
// updates; deletes with their tombstones; an ERP re-snapshot; and poison
// records (bad JSON, an unknown op, a change without the sink key field).
func Contacts(n int) ([]Record, Expect) {
	erp := NewSource("erp", "erp", false)
	crm := NewSource("crm", "crm", true)
	var out []Record
	var ex Expect
	add := func(topic string, k, v []byte) { out = append(out, Record{Topic: topic, Key: k, Value: v}) }

	base := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	erpRows := map[int64]*Contact{}
	crmRows := map[int64]*Contact{}
	// erpApplied is the latest state of each ERP row that the ERP
	// topology applied (and its ledger remembers). An echo is dropped by
	// authority and leaves no ledger entry, so it does not change it.
	erpApplied := map[int64]Contact{}
	for id := int64(1); id <= int64(n); id++ {
		c := contact(id, base)
		erpRows[id] = c
		erpApplied[id] = *c
		cc := *c
		crmRows[id] = &cc
		k, v := erp.Change('r', nil, c)
		add(erp.Topic(), k, v)
		k, v = crm.Change('r', nil, &cc)
		add(crm.Topic(), k, v)
	}

	var redeliver []Record
	// ERP updates owned fields: phone and address.
	for id := int64(1); id <= int64(n); id += 2 {
		before := *erpRows[id]
		after := before
		after.Phone = fmt.Sprintf("+49 30 %07d", 2000000+id)
		after.Address = fmt.Sprintf("%d Harbour Road", id)
		after.UpdatedAt = before.UpdatedAt.Add(time.Hour)
		erpRows[id] = &after
		erpApplied[id] = after
		k, v := erp.Change('u', &before, &after)
		add(erp.Topic(), k, v)
		if id%10 == 1 {
			redeliver = append(redeliver, Record{erp.Topic(), k, v})
		}
		// The echo: cdcsync wrote the phone into the CRM; the CRM's CDC
		// shows a change of ERP-owned fields only, and must be dropped.
		cb := *crmRows[id]
		ca := cb
		ca.Phone, ca.Address = after.Phone, after.Address
		crmRows[id] = &ca
		k, v = crm.Change('u', &cb, &ca)
		add(crm.Topic(), k, v)
		ex.Echoes++
	}
	// An ERP update that also touches the CRM-owned email: the phone
	// passes, the email is dropped by authority.
	for id := int64(2); id <= int64(n); id += 10 {
		before := *erpRows[id]
		after := before
		after.Email = fmt.Sprintf("erp-typo-%d@example", id)
		after.Phone = fmt.Sprintf("+49 40 %07d", 3000000+id)
		erpRows[id] = &after
		erpApplied[id] = after
		k, v := erp.Change('u', &before, &after)
		add(erp.Topic(), k, v)
	}
	// CRM updates the email it owns; the ERP's echo must be dropped.
	for id := int64(3); id <= int64(n); id += 3 {
		before := *crmRows[id]
		after := before
		after.Email = fmt.Sprintf("%s.%s@example.org", after.FirstName, after.LastName)
		crmRows[id] = &after
		k, v := crm.Change('u', &before, &after)
		add(crm.Topic(), k, v)
		if id%9 == 0 {
			redeliver = append(redeliver, Record{crm.Topic(), k, v})
		}
		eb := *erpRows[id]
		ea := eb
		ea.Email = after.Email
		erpRows[id] = &ea
		k, v = erp.Change('u', &eb, &ea)
		add(erp.Topic(), k, v)
		ex.Echoes++
	}
	// Redelivery: Debezium re-sends changes after a connector restart.
	out = append(out, redeliver...)
	ex.Duplicates += len(redeliver)

	// Deletes, each followed by its tombstone.
	for id := int64(n); id > int64(n)-3 && id > 0; id-- {
		before := erpRows[id]
		delete(erpRows, id)
		k, v := erp.Change('d', before, nil)
		add(erp.Topic(), k, v)
		add(erp.Topic(), erp.Tombstone(id), nil)
		ex.Tombstones++
	}

	// The ERP connector snapshots again. A snapshot row is a duplicate
	// when it equals the latest state the ERP topology applied for its
	// row (ledger row states); the rows whose last change was an echo
	// (the CRM's email, dropped by authority) differ from it and pass, a
	// harmless rewrite with the ERP-owned fields the sink already has.
	for id := int64(1); id <= int64(n); id++ {
		c, ok := erpRows[id]
		if !ok {
			continue
		}
		k, v := erp.Change('r', nil, c)
		add(erp.Topic(), k, v)
		if *c == erpApplied[id] {
			ex.Duplicates++
		}
	}

	// Poison records: they go to the DLQ with their context; what follows
	// them still flows.
	add(erp.Topic(), []byte(`{"id":1}`), []byte(`{"before":null,"after":{"id":1,`)) // truncated JSON
	add(erp.Topic(), []byte(`{"id":2}`), []byte(`{"before":null,"after":{"id":2},"source":{"connector":"postgresql","name":"erp","db":"erp","schema":"public","table":"contacts","lsn":1,"txId":1,"ts_ms":0},"op":"x","ts_ms":0}`))
	add(erp.Topic(), []byte(`{"contact_ref":9}`), []byte(`{"before":null,"after":{"contact_ref":9,"phone":"+1"},"source":{"connector":"postgresql","name":"erp","db":"erp","schema":"public","table":"contacts","lsn":5,"txId":2,"ts_ms":0},"op":"c","ts_ms":0}`))
	ex.Poison = 3

	ex.Records = len(out)
	return out, ex
}
