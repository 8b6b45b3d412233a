using System.Globalization;
using System.Text;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker;

/// <content>Outstanding leases: the assertions and waits users put in their tests and shutdown paths.</content>
public sealed partial class DirectBufferPool
{
    /// <summary>Throws if any lease is still rented: a test's check that the code under test returned every buffer.</summary>
    /// <exception cref="InvalidOperationException">Leases are outstanding; the message lists them, with stacks and contexts when the monitor recorded them.</exception>
    public void AssertNoOutstanding()
    {
        long outstanding = OutstandingCount;
        if (outstanding > 0)
        {
            throw new InvalidOperationException(DescribeOutstanding(outstanding));
        }
    }

    /// <summary>Completes when every lease that can still come back has been returned, for tests and graceful shutdown.</summary>
    /// <remarks>Leases found leaked by their finalizer (see <see cref="DirectBufferPoolStatistics.LeakedBytes"/>) cannot come back and are not waited for.</remarks>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> to wait forever.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when <see cref="OutstandingCount"/> reaches zero.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative and not infinite.</exception>
    /// <exception cref="TimeoutException">The timeout passed with leases still out; the message lists them, as <see cref="AssertNoOutstanding"/> does.</exception>
    public Task WhenAllReturnedAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            Guard.InRange(timeout, TimeSpan.Zero, TimeSpan.MaxValue, nameof(timeout));
        }

        return IsSettled(Sum()) ? Task.CompletedTask : WaitForDrainAsync(timeout, cancellationToken);
    }

    private async Task WaitForDrainAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        TaskCompletionSource drained;
        while (true)
        {
            TaskCompletionSource? current = Volatile.Read(ref _drained);
            if (current is not null)
            {
                drained = current;
                break;
            }

            var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (Interlocked.CompareExchange(ref _drained, created, null) is null)
            {
                drained = created;
                break;
            }
        }

        // Publish the signal, then read the counts. A returner stores its count, then reads the signal. The
        // process-wide barrier (the rare side pays) means at least one of us sees the other, so no wake-up is lost.
        Interlocked.MemoryBarrierProcessWide();
        SignalIfDrained();

        try
        {
            await drained.Task.WaitAsync(timeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Totals totals = Sum();
            if (IsSettled(totals))
            {
                return;
            }

            long outstanding = totals.Outstanding;

            throw new TimeoutException($"Timed out after {timeout} waiting for leases to come back. {DescribeOutstanding(outstanding)}");
        }
    }

    private void SignalIfDrained()
    {
        if (Volatile.Read(ref _drained) is { } drained && IsSettled(Sum()))
        {
            Interlocked.CompareExchange(ref _drained, null, drained);
            drained.TrySetResult();
        }
    }

    private string DescribeOutstanding(long outstanding)
    {
        var text = new StringBuilder();
        text.Append("Pool '").Append(Name).Append("' has ").Append(outstanding).Append(outstanding == 1 ? " lease" : " leases").Append(" outstanding.");
        long leaked = Volatile.Read(ref _leakedOutstanding);
        if (leaked > 0)
        {
            text.Append(' ').Append(leaked).Append(leaked == 1 ? " of them was" : " of them were")
                .Append(" dropped without Dispose and found by the finalizer (LeakDetected reported each); their blocks stay out of circulation.");
        }
        IReadOnlyList<ResidentBuffer> records = _residentMonitor?.GetResidentOfPool(_poolId) ?? [];
        foreach (ResidentBuffer record in records)
        {
            text.Append('\n').Append("- buffer ").Append(record.Id).Append(": ").Append(record.ActualSize).Append(" bytes, ")
                .Append(record.BufferType).Append(", rented ").Append(record.AliveSeconds.ToString("0.000", CultureInfo.InvariantCulture))
                .Append(" s ago, context ").Append(record.Context is null ? "none" : $"'{record.Context}'");
            foreach (string frame in record.StackTrace.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                text.Append("\n    at ").Append(frame);
            }
        }

        // Leaked leases were reported when found, and their records removed then.
        long unlisted = outstanding - leaked - records.Count;
        if (unlisted > 0)
        {
            text.Append('\n').Append(unlisted).Append(unlisted == 1 ? " lease was" : " leases were")
                .Append(" not recorded by the monitor (it was off when they were rented); enable it (BufferMonitor.Enable(), or a ResidentBufferMonitor in the options) to list them with their stacks.");
        }

        return text.ToString();
    }
}
