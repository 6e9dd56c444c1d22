// The load generator's own GC pauses, counted as they happen (a pause delays every message not read yet).
import { PerformanceObserver, constants } from 'node:perf_hooks';

/** Starts counting; `stop()` disconnects. The returned `gc` object is updated in place. */
export function watchGcPauses() {
  const gc = { pauses: 0, total_ms: 0, longest_ms: 0, major: 0, major_ms: 0 };
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.pauses++;
      gc.total_ms += e.duration;
      gc.longest_ms = Math.max(gc.longest_ms, e.duration);
      if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        gc.major++;
        gc.major_ms += e.duration;
      }
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return { gc, stop: () => observer.disconnect() };
}
