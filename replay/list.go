package replay

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"
)

// Group is what one connector's dead-letter topic holds for one customer.
type Group struct {
	Connector string `json:"connector"`
	Customer  string `json:"customer"`
	Records   int    `json:"records"`
	// Pending are the records no replay has sent again yet.
	Pending int       `json:"pending"`
	Oldest  time.Time `json:"oldest"`
	Newest  time.Time `json:"newest"`
	Reasons []Reason  `json:"reasons"`
}

// Reason counts the records that failed one way: with one error class and
// HTTP status. Messages name the record they are about, so they do not
// group; Example is the first one, and show gives each.
type Reason struct {
	ErrorClass string `json:"error_class"`
	HTTPStatus int    `json:"http_status,omitempty"`
	Records    int    `json:"records"`
	Example    string `json:"example"`
}

// List counts the dead-lettered records f selects per connector and
// customer, with their reasons.
func (o *Ops) List(ctx context.Context, f Filter) ([]Group, error) {
	connectors, err := o.selected(f)
	if err != nil {
		return nil, err
	}
	var groups []Group
	for _, c := range connectors {
		byCustomer := map[string]*Group{}
		type kind struct {
			class  string
			status int
		}
		reasons := map[string]map[kind]*Reason{}
		err := o.scan(ctx, c, func(r *Record) error {
			if !f.matches(r) {
				return nil
			}
			g, ok := byCustomer[r.Customer]
			if !ok {
				g = &Group{Connector: c, Customer: r.Customer, Oldest: r.DeadLetteredAt, Newest: r.DeadLetteredAt}
				byCustomer[r.Customer] = g
				reasons[r.Customer] = map[kind]*Reason{}
			}
			g.Records++
			if !r.Replayed {
				g.Pending++
			}
			if r.DeadLetteredAt.Before(g.Oldest) {
				g.Oldest = r.DeadLetteredAt
			}
			if r.DeadLetteredAt.After(g.Newest) {
				g.Newest = r.DeadLetteredAt
			}
			k := kind{r.ErrorClass, r.HTTPStatus}
			reason, ok := reasons[r.Customer][k]
			if !ok {
				reason = &Reason{ErrorClass: r.ErrorClass, HTTPStatus: r.HTTPStatus, Example: r.Reason}
				reasons[r.Customer][k] = reason
			}
			reason.Records++
			return nil
		})
		if err != nil {
			return nil, err
		}
		for customer, g := range byCustomer {
			for _, reason := range reasons[customer] {
				g.Reasons = append(g.Reasons, *reason)
			}
			slices.SortFunc(g.Reasons, func(a, b Reason) int {
				return cmp.Or(b.Records-a.Records, cmp.Compare(a.ErrorClass, b.ErrorClass), cmp.Compare(a.HTTPStatus, b.HTTPStatus))
			})
			groups = append(groups, *g)
		}
	}
	slices.SortFunc(groups, func(a, b Group) int {
		return cmp.Or(cmp.Compare(a.Connector, b.Connector), cmp.Compare(a.Customer, b.Customer))
	})
	return groups, nil
}

// Show returns the records f selects, oldest first per partition, at most
// limit of them (0: all).
func (o *Ops) Show(ctx context.Context, f Filter, limit int) ([]Record, error) {
	connectors, err := o.selected(f)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, c := range connectors {
		err := o.scan(ctx, c, func(r *Record) error {
			if !f.matches(r) {
				return nil
			}
			out = append(out, *r)
			if limit > 0 && len(out) == limit {
				return errEnough
			}
			return nil
		})
		if errors.Is(err, errEnough) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
