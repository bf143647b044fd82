package evptest

import evp "github.com/evproxy/evproxy/plugins/sdk/go"

// Apply returns the records evproxy sends on for the input record in with
// verdict v: in itself for KEEP, none for DROP and REJECT, and for REPLACE
// one record per output, each a copy of in with the output's fields
// applied. An output to another topic gets Partition -1: evproxy's
// partitioner picks it by key.
func Apply(in evp.Record, v evp.Verdict) []evp.Record {
	switch v.Action() {
	case evp.ActionKeep:
		return []evp.Record{in.Clone()}
	case evp.ActionReplace:
	default:
		return nil
	}
	out := make([]evp.Record, 0, v.NumOutputs())
	for i := range v.NumOutputs() {
		o := v.Output(i)
		r := in.Clone()
		if t, ok := o.Topic(); ok && t != in.Topic {
			r.Topic, r.Partition = t, -1
		}
		if k, ok := o.Key(); ok {
			r.Key = k
		}
		if val, ok := o.Value(); ok {
			r.Value = val
		}
		if h, ok := o.Headers(); ok {
			r.Headers = h
		}
		out = append(out, r)
	}
	return out
}

// EventType returns the event type evproxy gives r (DESIGN §6, without a
// route's event_type_from): header ce_type, else header event_type, else
// the topic.
func EventType(r evp.Record) string {
	if v, ok := r.Header("ce_type"); ok && v != nil {
		return string(v)
	}
	if v, ok := r.Header("event_type"); ok && v != nil {
		return string(v)
	}
	return r.Topic
}
