module github.com/liblim/liblim

go 1.23.0

require golang.org/x/mod v0.22.0

require (
	golang.org/x/crypto v0.36.0
	golang.org/x/sys v0.31.0 // indirect
)
