// This module exists only to build Jaeger v2 (github.com/jaegertracing/jaeger/cmd/jaeger)
// for lockscope's end-to-end tests. `go install pkg@version` refuses Jaeger because its
// go.mod has a replace directive, so we require it here with the same replace and build
// it with `go build` (see ../jaeger.sh). It is a separate module so that the lockscope
// module neither sees nor depends on it.
module lockscope.invalid/ci/jaeger

go 1.24.6

require github.com/jaegertracing/jaeger v1.76.0

// Same replace as Jaeger's own go.mod.
replace github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0
