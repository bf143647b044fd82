package app

import (
	"context"
	"fmt"

	"github.com/evproxy/evproxy/internal/batchcodec"
	"github.com/evproxy/evproxy/internal/outbox"
	"github.com/evproxy/evproxy/internal/pipeline"
)

// rowProcessor runs the plugin chains on rows applications wrote to the
// outbox with evproxy.publish: once, at relay time (DESIGN §2).
func (a *App) rowProcessor() outbox.RowProcessor {
	return rowProcessor{router: a.router, proc: a.processor, suffix: a.cfg.DeadLetter.TopicSuffix}
}

type rowProcessor struct {
	router *pipeline.Router
	proc   *pipeline.Processor
	suffix string
}

// ProcessRows runs each row through its route like a produced record.
// Rows of topics no route claims, or whose route has no plugins, are
// published as written.
func (p rowProcessor) ProcessRows(ctx context.Context, rows []*outbox.Row) ([]outbox.RowOutcome, error) {
	out := make([]outbox.RowOutcome, len(rows))
	for i, row := range rows {
		rt, fixed := p.router.Match(row.Topic)
		if !p.router.Claims(row.Topic) || (fixed && rt != nil && rt.Passthrough()) {
			out[i] = outbox.RowOutcome{Publish: []outbox.Message{row.Message}}
			continue
		}
		rec := batchcodec.Record{Key: row.Key, Value: row.Value, Timestamp: row.Timestamp.UnixMilli()}
		for _, h := range row.Headers {
			rec.Headers = append(rec.Headers, batchcodec.Header{Key: h.Key, Value: h.Value})
		}
		res, err := p.proc.Process(ctx, pipeline.Input{Topic: row.Topic, Partition: row.Partition, Records: []batchcodec.Record{rec}})
		if err != nil {
			return nil, fmt.Errorf("app: plugins on outbox row %d: %w", row.ID, err)
		}
		out[i] = p.outcome(row, res)
	}
	return out, nil
}

// outcome converts the pipeline's outcome for one row.
func (p rowProcessor) outcome(row *outbox.Row, res pipeline.Outcome) outbox.RowOutcome {
	if len(res.Errors) > 0 {
		// on_reject = "error" (or no route for the event type): nobody
		// waits for an answer, so the row is dead-lettered.
		return outbox.RowOutcome{Rejected: &outbox.Rejection{Reason: res.Errors[0].Message}}
	}
	var oc outbox.RowOutcome
	msg := func(topic string, partition int32, r batchcodec.Record) outbox.Message {
		m := row.Message
		m.Topic, m.Partition, m.Key, m.Value = topic, partition, r.Key, r.Value
		m.Headers = make([]outbox.Header, len(r.Headers))
		for i, h := range r.Headers {
			m.Headers[i] = outbox.Header{Key: h.Key, Value: h.Value}
		}
		return m
	}
	for _, r := range res.Main {
		oc.Publish = append(oc.Publish, msg(row.Topic, row.Partition, r))
	}
	for _, s := range res.Side {
		if res.DeadLettered > 0 && s.Topic == row.Topic+p.suffix {
			// The pipeline's dead letter: the outbox's dead-letter table
			// is the source of truth, so record it there instead.
			oc.Rejected = &outbox.Rejection{Reason: header(s.Headers, "evproxy.error.reason"), Plugin: header(s.Headers, "evproxy.error.plugin")}
			continue
		}
		oc.Publish = append(oc.Publish, msg(s.Topic, -1, batchcodec.Record{Key: s.Key, Value: s.Value, Headers: s.Headers}))
	}
	if oc.Rejected != nil && len(oc.Publish) > 0 {
		// A fan-out where one output was rejected cannot happen (a
		// verdict is per input record); keep the publishes if it does.
		oc.Rejected = nil
	}
	return oc
}

func header(hs []batchcodec.Header, name string) string {
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == name {
			return string(hs[i].Value)
		}
	}
	return ""
}
