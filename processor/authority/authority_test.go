package authority

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// The contacts topology of design section 4: CRM owns email and the
// entity, ERP owns phone and address.
func contactRules(p Policy) *Rules {
	return New(map[string]string{"email": "crm", "phone": "erp", "address": "erp"}, "crm", p)
}

func row(kv ...any) cdc.Row {
	r := make(cdc.Row, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		r = append(r, cdc.Field{Name: kv[i].(string), Value: kv[i+1]})
	}
	return r
}

var key42 = row("contact_id", int64(42))

// Regression (found on the real stack): an insert or snapshot row whose
// non-key columns are all NULL, or any row of a key-only table, was
// dropped as "nothing owned changed".
func TestApplyOwnerCreatesEmptyRow(t *testing.T) {
	key := cdc.Row{{Name: "id", Value: int64(3)}}
	for _, op := range []cdc.Op{cdc.OpCreate, cdc.OpRead} {
		r := New(nil, "erp", DropField)
		ev := &cdc.Event{Op: op, SourceSystem: "erp", Key: key,
			After: cdc.Row{{Name: "id", Value: int64(3)}, {Name: "price", Value: nil}}, Changed: []string{"id", "price"}}
		if d := apply(r, ev); !d.Keep {
			t.Errorf("op %c: all-NULL row from the entity owner dropped", op)
		}
		keyOnly := &cdc.Event{Op: op, SourceSystem: "erp", Key: key, After: cdc.Row{{Name: "id", Value: int64(3)}}, Changed: []string{"id"}}
		if d := apply(r, keyOnly); !d.Keep {
			t.Errorf("op %c: key-only row from the entity owner dropped", op)
		}
		// Regression (issue 9, item 5): an insert from the entity owner
		// whose only non-NULL field belongs to another system was dropped
		// as an echo, while an all-NULL one passed. The owner's insert
		// creates the entity: it passes with its owned fields.
		foreign := &cdc.Event{Op: op, SourceSystem: "erp", Key: key,
			After:   cdc.Row{{Name: "id", Value: int64(3)}, {Name: "email", Value: "a@x"}, {Name: "price", Value: nil}},
			Changed: []string{"id", "email", "price"}}
		d := apply(New(map[string]string{"email": "crm"}, "erp", DropField), foreign)
		if !d.Keep || !reflect.DeepEqual(d.Fields, []string{"price"}) || !reflect.DeepEqual(d.Dropped, []string{"email"}) {
			t.Errorf("op %c: owner's insert with only a foreign field set: %+v", op, d)
		}
		// A system that does not own the entity creates nothing by itself.
		if d := apply(New(nil, "crm", DropField), ev); d.Keep {
			t.Errorf("op %c: all-NULL row from a non-owner kept", op)
		}
	}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name string
		ev   cdc.Event
		pol  Policy
		want Decision
	}{
		{
			name: "erp update of owned field",
			ev: cdc.Event{Op: cdc.OpUpdate, SourceSystem: "erp", Key: key42,
				Before:  row("contact_id", int64(42), "phone", "1", "email", "a@x"),
				After:   row("contact_id", int64(42), "phone", "2", "email", "a@x"),
				Changed: []string{"phone"}},
			want: Decision{Keep: true, Fields: []string{"phone"}},
		},
		{
			name: "erp update of owned and unowned fields drops the unowned",
			ev: cdc.Event{Op: cdc.OpUpdate, SourceSystem: "erp", Key: key42,
				Before:  row("contact_id", int64(42), "phone", "1", "email", "a@x", "address", "A", "name", "n"),
				After:   row("contact_id", int64(42), "phone", "2", "email", "b@x", "address", "B", "name", "m"),
				Changed: []string{"phone", "email", "address", "name"}},
			want: Decision{Keep: true, Fields: []string{"phone", "address"}, Dropped: []string{"email", "name"}},
		},
		{
			name: "unlisted fields belong to the default owner",
			ev: cdc.Event{Op: cdc.OpUpdate, SourceSystem: "crm", Key: key42,
				Before: row("name", "n"), After: row("name", "m"), Changed: []string{"name"}},
			want: Decision{Keep: true, Fields: []string{"name"}},
		},
		{
			// A CRM write of email into ERP, echoed back by ERP's CDC:
			// nothing ERP owns changed, so the loop stops here.
			name: "echo loop is dropped",
			ev: cdc.Event{Op: cdc.OpUpdate, SourceSystem: "erp", Key: key42,
				Before:  row("contact_id", int64(42), "email", "a@x", "phone", "1"),
				After:   row("contact_id", int64(42), "email", "b@x", "phone", "1"),
				Changed: []string{"email"}},
			want: Decision{Keep: false, Dropped: []string{"email"}},
		},
		{
			// Regression: under DLQ every echo used to be a violation, so a
			// two-way sync filled the DLQ with its own echoes.
			name: "echo loop under DLQ policy is dropped quietly",
			pol:  DLQ,
			ev: cdc.Event{Op: cdc.OpUpdate, SourceSystem: "erp", Key: key42,
				Before: row("email", "a@x"), After: row("email", "b@x"), Changed: []string{"email"}},
			want: Decision{Keep: false, Dropped: []string{"email"}},
		},
		{
			name: "DLQ policy with owned and unowned changes",
			pol:  DLQ,
			ev: cdc.Event{Op: cdc.OpUpdate, SourceSystem: "erp", Key: key42,
				Before:  row("email", "a@x", "phone", "1"),
				After:   row("email", "b@x", "phone", "2"),
				Changed: []string{"email", "phone"}},
			want: Decision{Keep: true, Fields: []string{"phone"}, Dropped: []string{"email"}, Violation: true},
		},
		{
			name: "DLQ policy with only owned changes is no violation",
			pol:  DLQ,
			ev: cdc.Event{Op: cdc.OpUpdate, SourceSystem: "erp", Key: key42,
				Before: row("phone", "1"), After: row("phone", "2"), Changed: []string{"phone"}},
			want: Decision{Keep: true, Fields: []string{"phone"}},
		},
		{
			name: "key fields are never subject to authority",
			ev: cdc.Event{Op: cdc.OpUpdate, SourceSystem: "erp", Key: key42,
				Before:  row("contact_id", int64(41), "phone", "1"),
				After:   row("contact_id", int64(42), "phone", "1"),
				Changed: []string{"contact_id"}},
			want: Decision{Keep: false},
		},
		{
			name: "insert skips nil fields",
			ev: cdc.Event{Op: cdc.OpCreate, SourceSystem: "erp", Key: key42,
				After:   row("contact_id", int64(42), "email", nil, "phone", "1", "address", nil),
				Changed: []string{"contact_id", "email", "phone", "address"}},
			want: Decision{Keep: true, Fields: []string{"phone"}},
		},
		{
			// CRM (the entity owner) created the contact, sync inserted it
			// into ERP with only email set; ERP's insert event must not
			// come back.
			name: "echo of a sync-created row is dropped",
			ev: cdc.Event{Op: cdc.OpCreate, SourceSystem: "erp", Key: key42,
				After:   row("contact_id", int64(42), "email", "a@x", "phone", nil, "address", nil),
				Changed: []string{"contact_id", "email", "phone", "address"}},
			want: Decision{Keep: false, Dropped: []string{"email"}},
		},
		{
			name: "snapshot read from the entity owner writes its owned NULLs",
			ev: cdc.Event{Op: cdc.OpRead, SourceSystem: "crm", Key: key42,
				After: row("email", nil, "name", "n"), Changed: []string{"email", "name"}},
			want: Decision{Keep: true, Fields: []string{"email", "name"}},
		},
		{
			name: "update without before-image keeps set-to-null",
			ev: cdc.Event{Op: cdc.OpUpdate, SourceSystem: "erp", Key: key42,
				After: row("phone", nil), Changed: []string{"phone"}},
			want: Decision{Keep: true, Fields: []string{"phone"}},
		},
		{
			name: "update to null with before-image is a change",
			ev: cdc.Event{Op: cdc.OpUpdate, SourceSystem: "erp", Key: key42,
				Before: row("phone", "1"), After: row("phone", nil), Changed: []string{"phone"}},
			want: Decision{Keep: true, Fields: []string{"phone"}},
		},
		{
			name: "unavailable values never count",
			ev: cdc.Event{Op: cdc.OpUpdate, SourceSystem: "erp", Key: key42,
				Before:  row("address", cdc.Unavailable{}, "email", cdc.Unavailable{}),
				After:   row("address", cdc.Unavailable{}, "email", cdc.Unavailable{}),
				Changed: []string{"address", "email"}},
			want: Decision{Keep: false},
		},
		{
			name: "field removed from after still counts",
			ev: cdc.Event{Op: cdc.OpUpdate, SourceSystem: "erp", Key: key42,
				Before: row("phone", "1"), After: row(), Changed: []string{"phone"}},
			want: Decision{Keep: true, Fields: []string{"phone"}},
		},
		{
			name: "delete by the entity owner",
			ev: cdc.Event{Op: cdc.OpDelete, SourceSystem: "crm", Key: key42,
				Before: row("contact_id", int64(42), "email", "a@x"), Changed: []string{"email"}},
			want: Decision{Keep: true},
		},
		{
			name: "delete by a non-owner is dropped, not a violation",
			pol:  DLQ,
			ev: cdc.Event{Op: cdc.OpDelete, SourceSystem: "erp", Key: key42,
				Before: row("contact_id", int64(42), "phone", "1"), Changed: []string{"phone"}},
			want: Decision{Keep: false},
		},
		{
			name: "tombstone from the owner",
			ev:   cdc.Event{Op: cdc.OpDelete, Tombstone: true, SourceSystem: "crm", Key: key42},
			want: Decision{Keep: true},
		},
		{
			name: "tombstone from a non-owner",
			ev:   cdc.Event{Tombstone: true, SourceSystem: "erp", Key: key42},
			want: Decision{Keep: false},
		},
		{
			name: "truncate by the owner",
			ev:   cdc.Event{Op: cdc.OpTruncate, SourceSystem: "crm"},
			want: Decision{Keep: true},
		},
		{
			name: "truncate by a non-owner",
			ev:   cdc.Event{Op: cdc.OpTruncate, SourceSystem: "erp"},
			want: Decision{Keep: false},
		},
		{
			name: "message passes through",
			ev:   cdc.Event{Op: cdc.OpMessage, SourceSystem: "erp", Message: &cdc.Message{Prefix: "p"}},
			want: Decision{Keep: true},
		},
		{
			name: "nothing changed",
			ev: cdc.Event{Op: cdc.OpUpdate, SourceSystem: "crm", Key: key42,
				Before: row("email", "a"), After: row("email", "a")},
			want: Decision{Keep: false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := apply(contactRules(tt.pol), &tt.ev)
			got.buf = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Apply = %+v\n          want %+v", got, tt.want)
			}
		})
	}
}

func TestApplyIntoReuses(t *testing.T) {
	r := contactRules(DropField)
	ev := &cdc.Event{Op: cdc.OpUpdate, SourceSystem: "erp", Key: key42,
		Before: row("phone", "1", "email", "a"), After: row("phone", "2", "email", "b"),
		Changed: []string{"phone", "email"}}
	var d Decision
	r.ApplyInto(ev, &d)
	if allocs := testing.AllocsPerRun(100, func() { r.ApplyInto(ev, &d) }); allocs != 0 {
		t.Errorf("ApplyInto allocates %v times per call with a reused Decision", allocs)
	}
	if !reflect.DeepEqual(d.Fields, []string{"phone"}) || !reflect.DeepEqual(d.Dropped, []string{"email"}) {
		t.Errorf("reused decision = %+v", d)
	}
	// Appending to Fields must not overwrite Dropped.
	_ = append(d.Fields, "x")
	if d.Dropped[0] != "email" {
		t.Errorf("append to Fields clobbered Dropped: %v", d.Dropped)
	}
}

func TestNewCopiesOwners(t *testing.T) {
	owners := map[string]string{"email": "crm"}
	r := New(owners, "erp", DropField)
	owners["email"] = "erp"
	if got := r.Owner("email"); got != "crm" {
		t.Errorf("Owner(email) = %q after the caller's map changed; want crm", got)
	}
	if r.Owner("other") != "erp" || r.DefaultOwner() != "erp" || r.Policy() != DropField {
		t.Error("accessors")
	}
}

func TestPolicyString(t *testing.T) {
	for want, p := range map[string]Policy{"drop_field": DropField, "dlq": DLQ, "Policy(7)": Policy(7)} {
		if p.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(p), p.String(), want)
		}
	}
}

func nineColumnUpdate() *cdc.Event {
	names := []string{"contact_id", "first_name", "last_name", "email", "phone", "address", "city", "country", "updated_at"}
	before, after := make(cdc.Row, 9), make(cdc.Row, 9)
	for i, n := range names {
		before[i] = cdc.Field{Name: n, Value: "old-" + n}
		after[i] = cdc.Field{Name: n, Value: "new-" + n}
	}
	before[0].Value, after[0].Value = int64(42), int64(42)
	return &cdc.Event{
		Op: cdc.OpUpdate, SourceSystem: "erp", Key: key42, Before: before, After: after,
		Changed: names[1:],
	}
}

func BenchmarkApply(b *testing.B) {
	r := New(map[string]string{"email": "crm", "first_name": "crm", "last_name": "crm",
		"phone": "erp", "address": "erp", "city": "erp", "country": "erp"}, "crm", DropField)
	ev := nineColumnUpdate()
	b.ReportAllocs()
	for b.Loop() {
		d := apply(r, ev)
		if !d.Keep {
			b.Fatal("dropped")
		}
	}
}

func BenchmarkApplyInto(b *testing.B) {
	r := New(map[string]string{"email": "crm", "first_name": "crm", "last_name": "crm",
		"phone": "erp", "address": "erp", "city": "erp", "country": "erp"}, "crm", DropField)
	ev := nineColumnUpdate()
	var d Decision
	b.ReportAllocs()
	for b.Loop() {
		r.ApplyInto(ev, &d)
	}
}

// TestApplyCombinations is the whole authority rule (issue 9, item 5):
// entity owner or not × owned fields only / foreign only / mixed / all
// NULL × c, r, u, d × drop_field and dlq. ERP owns the entity, phone and
// address; CRM owns email and name.
func TestApplyCombinations(t *testing.T) {
	rules := func(p Policy) *Rules { return New(map[string]string{"email": "crm", "name": "crm"}, "erp", p) }
	owned := map[string][]string{"erp": {"phone", "address"}, "crm": {"email", "name"}}
	foreign := map[string][]string{"erp": {"email", "name"}, "crm": {"phone", "address"}}
	all := []string{"phone", "address", "email", "name"}
	// set returns the non-key fields with the named ones non-NULL.
	set := func(names ...string) cdc.Row {
		r := row("id", int64(7))
		for _, f := range all {
			var v any
			for _, n := range names {
				if n == f {
					v = "v-" + f
				}
			}
			r = append(r, cdc.Field{Name: f, Value: v})
		}
		return r
	}
	full := func() cdc.Row { // a before-image with every field set to an old value
		r := row("id", int64(7))
		for _, f := range all {
			r = append(r, cdc.Field{Name: f, Value: "old-" + f})
		}
		return r
	}
	type want struct {
		keep             bool
		fields, dropped  []string
		violationFromDLQ bool // the same change under dlq is a Violation
	}
	for _, src := range []string{"erp", "crm"} {
		isOwner := src == "erp"
		own, other := owned[src], foreign[src]
		for _, combo := range []string{"owned only", "foreign only", "mixed", "all NULL"} {
			var names []string
			switch combo {
			case "owned only":
				names = own
			case "foreign only":
				names = other
			case "mixed":
				names = append(append([]string{}, own...), other...)
			}
			// Inserts and snapshot rows.
			var ins want
			switch {
			case isOwner: // creates the entity: every owned field, NULLs too
				ins = want{keep: true, fields: own}
				if combo == "foreign only" || combo == "mixed" {
					ins.dropped = other
				}
				ins.violationFromDLQ = combo == "mixed"
			case combo == "owned only":
				ins = want{keep: true, fields: own}
			case combo == "foreign only":
				ins = want{dropped: other}
			case combo == "mixed":
				ins = want{keep: true, fields: own, dropped: other, violationFromDLQ: true}
			case combo == "all NULL":
				ins = want{}
			}
			// Updates with a before-image: the named fields changed to a
			// new value; under "all NULL" every field changed to NULL.
			upd := want{}
			var changed []string
			var after cdc.Row
			switch combo {
			case "owned only":
				upd, changed, after = want{keep: true, fields: own}, own, set(names...)
			case "foreign only":
				upd, changed, after = want{dropped: other}, other, set(names...)
			case "mixed":
				upd, changed, after = want{keep: true, fields: own, dropped: other, violationFromDLQ: true}, names, set(names...)
			case "all NULL":
				upd, changed, after = want{keep: true, fields: own, dropped: other, violationFromDLQ: true}, all, set()
			}
			if combo != "all NULL" {
				// Fields not named keep their old value in the update.
				after = full()
				for i := range after {
					for _, n := range names {
						if after[i].Name == n {
							after[i].Value = "new-" + n
						}
					}
				}
			}
			cases := []struct {
				op cdc.Op
				ev cdc.Event
				w  want
			}{
				{cdc.OpCreate, cdc.Event{Op: cdc.OpCreate, After: set(names...), Changed: append([]string{"id"}, all...)}, ins},
				{cdc.OpRead, cdc.Event{Op: cdc.OpRead, After: set(names...), Changed: append([]string{"id"}, all...)}, ins},
				{cdc.OpUpdate, cdc.Event{Op: cdc.OpUpdate, Before: full(), After: after, Changed: changed}, upd},
				// A delete is entity-level, whatever its before-image holds.
				{cdc.OpDelete, cdc.Event{Op: cdc.OpDelete, Before: set(names...), Changed: append([]string{"id"}, all...)}, want{keep: isOwner}},
			}
			for _, c := range cases {
				for _, pol := range []Policy{DropField, DLQ} {
					name := fmt.Sprintf("%s/%s/%c/%s", map[bool]string{true: "owner", false: "non-owner"}[isOwner], combo, c.op, pol)
					t.Run(name, func(t *testing.T) {
						ev := c.ev
						ev.SourceSystem, ev.Key = src, row("id", int64(7))
						got := apply(rules(pol), &ev)
						w := Decision{Keep: c.w.keep, Fields: c.w.fields, Dropped: c.w.dropped, Violation: pol == DLQ && c.w.violationFromDLQ}
						got.buf = nil
						if !reflect.DeepEqual(got, w) {
							t.Errorf("Apply = %+v\n          want %+v", got, w)
						}
					})
				}
			}
		}
	}
}

// apply is ApplyInto with a fresh Decision.
func apply(r *Rules, ev *cdc.Event) Decision {
	var d Decision
	r.ApplyInto(ev, &d)
	return d
}
