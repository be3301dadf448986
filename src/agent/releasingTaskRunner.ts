import { Logger, LogLevel, TaskRunner } from "@daydreamsai/core";

/**
 * Core's task runner, except for how a task follows its caller's abort signal.
 *
 * Core links a task to the caller's signal with `signal.addEventListener("abort", ..., { signal:
 * task.controller.signal })`. On Node 20 a listener added with the `signal` option is held by a
 * FinalizationRegistry whose held value reaches the caller's signal again (through the task's own
 * abort listener), so unless one of the two signals aborts, neither is ever collected: each
 * decision's prompt, working memory and model stayed on the heap, about 55-70 KB per decision
 * (found with heap snapshots). Here the task follows the caller with a plain listener instead,
 * collected with the caller's signal, which is per run. (Releasing the task's controller once it
 * settles would not do: the model task settles when its stream starts, and the stream obeys it.)
 */
export class ReleasingTaskRunner extends TaskRunner {
  constructor(concurrency = 3) {
    // Core's own default concurrency; silent like the agent's logger (below LogLevel.ERROR).
    super(concurrency, new Logger({ level: -1 as LogLevel, transports: [] }));
  }

  override enqueueTask(...args: Parameters<TaskRunner["enqueueTask"]>): ReturnType<TaskRunner["enqueueTask"]> {
    const [task, params, options] = args;
    const queueKey = options?.queueKey ?? "main";
    const signal = options?.abortSignal;
    let result: ReturnType<TaskRunner["enqueueTask"]>;
    if (!signal) result = super.enqueueTask(...args);
    else {
      const { abortSignal: _, ...rest } = options;
      result = super.enqueueTask(task, params, rest);
      // enqueueTask pushes the new instance synchronously and starts it on a later tick.
      const queue = this.queues.get(queueKey);
      const instance = queue?.tasks[queue.tasks.length - 1];
      if (instance?.task === task) {
        const follow = () => instance.controller.abort(signal.reason);
        if (signal.aborted) follow();
        else signal.addEventListener("abort", follow, { once: true });
      }
    }
    // Core starts a queued task with setTimeout(0), which Node rounds up to 1 ms: with a model
    // call and an action per decision, that was 2 ms or more of every decision spent waiting.
    // Starting it on the next microtask does the same work in the same order, without the wait.
    queueMicrotask(() => this.startQueued(queueKey));
    return result;
  }

  private startQueued(queueKey: string): void {
    (this as unknown as { processQueue(key: string): void }).processQueue(queueKey);
  }
}
