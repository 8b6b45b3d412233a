using System.Runtime.InteropServices;

namespace OffHeapTracker.Samples;

/// <summary>Turns SIGINT (Ctrl+C), SIGTERM and SIGQUIT into one cancellation token, the only shutdown trigger a sample has.</summary>
/// <remarks>
/// <para>
/// Create it first thing in <c>Main</c>. The first of these signals cancels its default action (ending the process)
/// and cancels <see cref="Token"/>: the sample stops its loops, disposes its pools and prints its summary, as on
/// Ctrl+C. A second signal is left to the runtime's default and ends the process at once, the way out should a
/// shutdown ever hang.
/// </para>
/// <para>
/// A web host in the same process must not handle signals too: its console lifetime would take the signal, stop
/// only itself, and leave the sample waiting. Give such a host <c>SignalFreeHostLifetime</c> and stop it
/// with this token.
/// </para>
/// <para>
/// <c>dotnet run</c> does not forward SIGINT to the program it starts, so Ctrl+C on a terminal reaches the sample
/// through the terminal's process group, and <c>kill -INT</c> sent to the <c>dotnet run</c> process does not reach it.
/// Run the built program directly (<c>samples/X/bin/Debug/net10.0/X</c>) to signal it by its own pid.
/// </para>
/// </remarks>
internal sealed class ShutdownSignals : IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly PosixSignalRegistration[] _registrations;
    private int _received;

    public ShutdownSignals() =>
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal),
            PosixSignalRegistration.Create(PosixSignal.SIGQUIT, OnSignal),
        ];

    /// <summary>Gets a token cancelled by the first signal.</summary>
    public CancellationToken Token => _stopping.Token;

    /// <summary>Gets the signal that stopped the sample, or null while none has come.</summary>
    public PosixSignal? Received { get; private set; }

    /// <summary>Waits for a signal or until <paramref name="timeout"/> has passed.</summary>
    /// <returns>True if a signal came first: the sample should wind down.</returns>
    public bool Wait(TimeSpan timeout) => Token.WaitHandle.WaitOne(timeout);

    /// <summary>Completes (never faults) when a signal comes.</summary>
    public Task WaitAsync() => Task.Delay(Timeout.Infinite, Token).ContinueWith(static _ => { }, TaskScheduler.Default);

    public void Dispose()
    {
        foreach (PosixSignalRegistration registration in _registrations)
        {
            registration.Dispose();
        }

        _stopping.Dispose();
    }

    private void OnSignal(PosixSignalContext context)
    {
        if (Interlocked.Exchange(ref _received, 1) != 0)
        {
            return; // the second signal: let the runtime end the process
        }

        context.Cancel = true;
        Received = context.Signal;
        Console.WriteLine($"{context.Signal}: shutting down");
        _stopping.Cancel();
    }
}
