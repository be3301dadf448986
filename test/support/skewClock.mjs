// Preloaded into a product process (NODE_OPTIONS=--import) to give it a clock that is off by
// CLOCK_SKEW_MS, as a machine whose time drifted: everything in that process reads the skewed time.
const skew = Number(process.env.CLOCK_SKEW_MS ?? 0);
const realNow = Date.now;
Date.now = () => realNow() + skew;
