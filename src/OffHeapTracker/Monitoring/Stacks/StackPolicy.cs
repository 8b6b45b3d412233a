namespace OffHeapTracker.Monitoring;

/// <summary>Which buffers a monitor captures an allocation stack for. Every buffer is recorded in the resident table either way; only the stack, the costly part, is chosen.</summary>
public enum StackPolicy
{
    /// <summary>A stack for every buffer while capturing fits a CPU budget (<see cref="ResidentBufferMonitorOptions.StackBudget"/>, 1 % of one core by default); beyond it, one buffer in N, where N adapts to the budget, each sampled record carrying the weight of the N it stands for. The default.</summary>
    Budgeted,

    /// <summary>A stack for every buffer, whatever it costs (a few microseconds each): the forensic mode, dble's behaviour.</summary>
    Every,

    /// <summary>No stacks: records carry id, sizes, type, time, context, thread and pool only.</summary>
    None,
}
