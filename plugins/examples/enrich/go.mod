module github.com/evproxy/evproxy/plugins/examples/enrich

go 1.26

require github.com/evproxy/evproxy/plugins/sdk/go v0.0.0

replace github.com/evproxy/evproxy/plugins/sdk/go => ../../sdk/go
