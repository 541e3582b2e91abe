/**
 * The failover timings of the daemon config (cli/daemon/config.ts): defaults equal to the roles'
 * own, the TOML/YAML keys and flags, and the checks that refuse a combination under which a
 * deposed primary could still acknowledge writes when its successor is named.
 */
import { strict as assert } from 'node:assert';
import { parseConfigFile, resolveDaemonConfig, resolveFailoverTimings } from '../../cli/daemon/config.js';
import { controllerDefaults } from '../../metadata/service/controllers.js';
import { defaultDataNodeDownAfterMs, defaultHeartbeatIntervalMs, defaultLeaseTtlMs, leaseSafetyMarginMs } from '../../proto/limits.js';
import { isGalleonError } from '../../proto/errors.js';

function refused(fn: () => unknown, message: string, hint: string): void {
  assert.throws(fn, (err) => {
    assert.ok(isGalleonError(err, 'INVALID_ARGUMENT'), `expected INVALID_ARGUMENT, got ${String(err)}`);
    assert.equal(err.message, message);
    assert.equal(err.hint, hint);
    return true;
  });
}

describe('cli/daemon/config failover timings', () => {
  it('defaults to the shared limits (proto/limits.ts) that the data role, the lease guard and the controllers use', () => {
    assert.deepEqual(resolveFailoverTimings({}), {
      heartbeatIntervalMs: defaultHeartbeatIntervalMs, leaseTtlMs: defaultLeaseTtlMs, dataNodeDownAfterMs: defaultDataNodeDownAfterMs,
    });
    assert.equal(controllerDefaults.dataNodeHeartbeatTimeoutMs, defaultDataNodeDownAfterMs);
    // The defaults themselves pass the config's own safety check.
    assert.ok(defaultDataNodeDownAfterMs > defaultLeaseTtlMs + leaseSafetyMarginMs(defaultLeaseTtlMs));
  });

  it('reads [cluster] keys from TOML and YAML; flags override the file', () => {
    const toml = '[cluster]\nheartbeat_interval_ms = 250\nlease_ttl_ms = 2000\ndata_node_down_after_ms = 5000\n';
    const cfg = resolveDaemonConfig(parseConfigFile(toml, 'd.toml'), { leaseTtlMs: '3000' }, null);
    assert.deepEqual([cfg.heartbeatIntervalMs, cfg.leaseTtlMs, cfg.dataNodeDownAfterMs], [250, 3000, 5000]);
    const yaml = 'cluster:\n  data_node_down_after_ms: 20000\n';
    assert.equal(resolveDaemonConfig(parseConfigFile(yaml, 'd.yaml'), {}, null).dataNodeDownAfterMs, 20_000);
    assert.throws(() => parseConfigFile('[cluster]\nlease_ttl_ms = "4s"\n', 'd.toml'), /"cluster.lease_ttl_ms" has the wrong type/);
  });

  it('refuses down-after at or below lease ttl + margin, with one line and a hint', () => {
    const margin = leaseSafetyMarginMs(4000);
    assert.equal(margin, 400);
    refused(() => resolveFailoverTimings({ dataNodeDownAfterMs: 4400 }),
      'data-node-down-after-ms: 4400 ms must exceed the lease ttl 4000 ms plus its 400 ms safety margin (4400 ms), or two primaries could acknowledge writes',
      'raise --data-node-down-after-ms above 4400, or lower --lease-ttl-ms');
    assert.equal(resolveFailoverTimings({ dataNodeDownAfterMs: 4401 }).dataNodeDownAfterMs, 4401);
    // The margin never drops below 50 ms.
    refused(() => resolveFailoverTimings({ leaseTtlMs: 500, dataNodeDownAfterMs: '550' }),
      'data-node-down-after-ms: 550 ms must exceed the lease ttl 500 ms plus its 50 ms safety margin (550 ms), or two primaries could acknowledge writes',
      'raise --data-node-down-after-ms above 550, or lower --lease-ttl-ms');
    // Through the whole config too (a file value and a flag meeting).
    assert.throws(() => resolveDaemonConfig(parseConfigFile('[cluster]\nlease_ttl_ms = 9500\n', 'd.toml'), {}, null), /must exceed the lease ttl 9500 ms/);
  });

  it('refuses down-after shorter than two heartbeats, and values that are not whole milliseconds in range', () => {
    refused(() => resolveFailoverTimings({ heartbeatIntervalMs: 6000 }),
      'data-node-down-after-ms: 10000 ms is less than 2 heartbeat intervals of 6000 ms: healthy nodes would be marked down',
      'raise --data-node-down-after-ms to at least 12000, or lower --heartbeat-interval-ms');
    refused(() => resolveFailoverTimings({ leaseTtlMs: '4s' }), 'lease-ttl-ms: "4s" is not a whole number of milliseconds from 500 to 600000', 'e.g. --lease-ttl-ms 4000');
    refused(() => resolveFailoverTimings({ heartbeatIntervalMs: 10 }), 'heartbeat-interval-ms: 10 is not a whole number of milliseconds from 50 to 60000', 'e.g. --heartbeat-interval-ms 1000');
    refused(() => resolveFailoverTimings({ dataNodeDownAfterMs: 1.5 }), 'data-node-down-after-ms: 1.5 is not a whole number of milliseconds from 500 to 3600000', 'e.g. --data-node-down-after-ms 10000');
  });
});
