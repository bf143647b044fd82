package config

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// The structs below are the HCL schema, decoded by gohcl. Every attribute is
// an hcl.Expression so that the decoder evaluates it itself: it then knows
// whether a key was set (to apply defaults) and the key's source range (to
// point diagnostics at it). gohcl reports unknown keys and blocks, missing
// and extra labels.

// fileSchema is the top level of a configuration file. Singleton blocks are
// slices so that the decoder reports duplicates with its own message.
type fileSchema struct {
	Proxy      []*proxyBlock      `hcl:"proxy,block"`
	Admin      []*adminBlock      `hcl:"admin,block"`
	Kafka      []*kafkaBlock      `hcl:"kafka,block"`
	Log        []*logBlock        `hcl:"log,block"`
	DeadLetter []*deadLetterBlock `hcl:"dead_letter,block"`
	Outbox     []*outboxBlock     `hcl:"outbox,block"`
	Plugins    []*pluginBlock     `hcl:"plugin,block"`
	Routes     []*routeBlock      `hcl:"route,block"`
}

type deadLetterBlock struct {
	Enabled     hcl.Expression `hcl:"enabled,optional"`
	TopicSuffix hcl.Expression `hcl:"topic_suffix,optional"`
	DefRange    hcl.Range      `hcl:",def_range"`
}

type pluginBlock struct {
	Name        string         `hcl:"name,label"`
	NameRange   hcl.Range      `hcl:"name,label_range"`
	Path        hcl.Expression `hcl:"path,optional"`
	Config      hcl.Expression `hcl:"config,optional"`
	MemoryLimit hcl.Expression `hcl:"memory_limit,optional"`
	Timeout     hcl.Expression `hcl:"timeout,optional"`
	Tables      hcl.Expression `hcl:"tables,optional"`
	DefRange    hcl.Range      `hcl:",def_range"`
}

type proxyBlock struct {
	Listen          hcl.Expression `hcl:"listen,optional"`
	Advertised      hcl.Expression `hcl:"advertised,optional"`
	MaxRequestBytes hcl.Expression `hcl:"max_request_bytes,optional"`
	MaxInflight     hcl.Expression `hcl:"max_inflight,optional"`
	ShutdownTimeout hcl.Expression `hcl:"shutdown_timeout,optional"`
	IdleTimeout     hcl.Expression `hcl:"idle_timeout,optional"`
	DefRange        hcl.Range      `hcl:",def_range"`
}

type adminBlock struct {
	Listen   hcl.Expression `hcl:"listen,optional"`
	DefRange hcl.Range      `hcl:",def_range"`
}

type kafkaBlock struct {
	Brokers            hcl.Expression `hcl:"brokers,optional"`
	Embedded           hcl.Expression `hcl:"embedded,optional"`
	EmbeddedPartitions hcl.Expression `hcl:"embedded_partitions,optional"`
	ClientID           hcl.Expression `hcl:"client_id,optional"`
	RequestTimeout     hcl.Expression `hcl:"request_timeout,optional"`
	ProduceTimeout     hcl.Expression `hcl:"produce_timeout,optional"`
	DefRange           hcl.Range      `hcl:",def_range"`
}

type logBlock struct {
	Level    hcl.Expression `hcl:"level,optional"`
	Format   hcl.Expression `hcl:"format,optional"`
	DefRange hcl.Range      `hcl:",def_range"`
}

type routeBlock struct {
	Name          string         `hcl:"name,label"`
	NameRange     hcl.Range      `hcl:"name,label_range"`
	Topics        hcl.Expression `hcl:"topics,optional"`
	EventTypes    hcl.Expression `hcl:"event_types,optional"`
	EventTypeFrom hcl.Expression `hcl:"event_type_from,optional"`
	Plugins       hcl.Expression `hcl:"plugins,optional"`
	OnReject      hcl.Expression `hcl:"on_reject,optional"`
	Delivery      hcl.Expression `hcl:"delivery,optional"`
	Priority      hcl.Expression `hcl:"priority,optional"`
	Ordering      hcl.Expression `hcl:"ordering,optional"`
	Retry         []*retryBlock  `hcl:"retry,block"`
	DefRange      hcl.Range      `hcl:",def_range"`
}

func (b *proxyBlock) defRange() hcl.Range      { return b.DefRange }
func (b *adminBlock) defRange() hcl.Range      { return b.DefRange }
func (b *kafkaBlock) defRange() hcl.Range      { return b.DefRange }
func (b *logBlock) defRange() hcl.Range        { return b.DefRange }
func (b *deadLetterBlock) defRange() hcl.Range { return b.DefRange }

// explainUnsupported completes hcl's diagnostics for unknown keys and blocks
// in body, the file's body, with the names that are valid there.
func explainUnsupported(diags hcl.Diagnostics, body hcl.Body) {
	file, ok := body.(*hclsyntax.Body)
	if !ok {
		return
	}
	for _, d := range diags {
		if d.Subject == nil || (d.Summary != "Unsupported argument" && d.Summary != "Unsupported block type") {
			continue
		}
		what, where, names := "blocks", "at the top level", schemaNames(&fileSchema{})
		for _, b := range file.Blocks {
			if b.Range().ContainsOffset(d.Subject.Start.Byte) && b.TypeRange != *d.Subject {
				what, where, names = "keys", "in a "+b.Type+" block", schemaNames(blockSchema(b.Type))
				break
			}
		}
		if len(names) == 0 {
			continue
		}
		d.Detail += fmt.Sprintf(" Valid %s %s are %s: rename or remove this one.", what, where, strings.Join(names, ", "))
	}
}

// blockSchema returns the schema struct of a top-level block type, or nil.
func blockSchema(typ string) any {
	switch typ {
	case "proxy":
		return &proxyBlock{}
	case "admin":
		return &adminBlock{}
	case "kafka":
		return &kafkaBlock{}
	case "log":
		return &logBlock{}
	case "route":
		return &routeBlock{}
	case "plugin":
		return &pluginBlock{}
	case "dead_letter":
		return &deadLetterBlock{}
	case "outbox":
		return &outboxBlock{}
	}
	return nil
}

// schemaNames returns the attribute and block names of a schema struct.
func schemaNames(schema any) []string {
	if schema == nil {
		return nil
	}
	s, _ := gohcl.ImpliedBodySchema(schema)
	var names []string
	for _, a := range s.Attributes {
		names = append(names, a.Name)
	}
	for _, b := range s.Blocks {
		names = append(names, b.Type)
	}
	return names
}
