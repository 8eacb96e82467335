//go:build race

package supervisor

// raceEnabled is true under the race detector, which makes every
// registry write and proxied request several times slower; the churn test
// then runs fewer waves.
const raceEnabled = true
