"""The TokenReview webhook: the request/reply codec, the reviewer (cache, chain, decision), the
result cache and the TokenReview audit log."""
