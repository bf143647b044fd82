module github.com/evproxy/evproxy/plugins/sdk/go

go 1.26
