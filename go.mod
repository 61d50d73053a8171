module github.com/clawea/clawea

go 1.26.0

require filippo.io/edwards25519 v1.2.0
