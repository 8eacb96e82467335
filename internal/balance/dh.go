package balance

func init() { Register("dh", newBucketHash) }

// dh is LVS's destination hashing scheduler. It is sh's bucket table; the
// two differ only in what the data plane hashes into the key — the client's
// address for sh, the destination's (or the request's target) for dh — so
// the names let a config say which one it means.
