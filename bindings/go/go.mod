module github.com/kvcore/kvcore/bindings/go

go 1.19
