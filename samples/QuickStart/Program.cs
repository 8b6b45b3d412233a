// QuickStart: the leak runbook on a small workload in which one code path forgets to return its buffers.
//   1. The monitor is off, as in production. The pool's age census still sees buffers that stay out, and the
//      monitor's report is empty and says why.
//   2. Switch the monitor on and let the workload go on. A second later the monitor lists what is still out, and
//      its top leak site names the code to fix.
// Ctrl+C, SIGTERM or SIGQUIT during a wait skips the rest and still releases everything.
using System.Globalization;
using OffHeapTracker;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Samples;
using QuickStart;

using var signals = new ShutdownSignals();
var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "quickstart" });

// Two client connections, each holding a read buffer for its whole life: resident by design (POOL).
var alice = new Connection(pool, "conn 1 10.0.0.5:53122");
var bob = new Connection(pool, "conn 2 10.0.0.9:40410");
var service = new OrderService(pool);

Serve(1, 30);
Console.WriteLine("Waiting a second for the forgotten buffers to age...");
if (!signals.Wait(TimeSpan.FromSeconds(1.2)))
{
    // Step 1, with the monitor off: the census counts old NORMAL buffers, whoever rented them.
    PrintCensus(pool);
    PrintVerdict(BufferMonitor.GetLeakSites(type: BufferType.Normal));

    // Step 2: switch the monitor on; it records what is rented from now on.
    BufferMonitor.Enable();
    Serve(31, 60);

    // Buffers younger than 1 s are hidden by default, as in dble: they are usually about to come back.
    Console.WriteLine();
    Console.WriteLine("Monitor on. Waiting past the monitor's 1 s minimum age...");
    if (!signals.Wait(TimeSpan.FromSeconds(1.2)))
    {
        Report(pool);
    }
}

service.ReleaseCache();
alice.Dispose();
bob.Dispose();
BufferMonitor.Disable();
(string summary, bool clean) = PoolShutdown.DisposeAll(pool);
if (signals.Received is not null)
{
    Console.WriteLine($"shut down: {summary}");
}

return clean ? 0 : 1;

void Serve(int first, int last)
{
    for (int request = first; request <= last; request++)
    {
        Connection connection = request % 2 == 0 ? alice : bob;
        using (BufferMonitor.BeginContext($"{connection.Name} GET /orders/{request}"))
        {
            service.Handle(request);
        }
    }
}

// README:runbook:begin
// A minute is the usual threshold in production; this demo's buffers are a second old.
static void PrintCensus(DirectBufferPool pool)
{
    BufferCensus census = pool.TakeCensus();
    TimeSpan age = TimeSpan.FromSeconds(1);
    Console.WriteLine(string.Create(
        CultureInfo.InvariantCulture,
        $"Census (pool.TakeCensus()): {census.CountOlderThan(age, BufferType.Normal)} NORMAL buffers out for more than {age.TotalSeconds} s, "
        + $"{census.BytesOlderThan(age, BufferType.Normal):N0} bytes; the oldest {census.GetOldestAge(BufferType.Normal)?.TotalSeconds ?? 0:0.0} s."));
}

// The verdict: the top site's first frame is the code to fix; an empty report says why it is empty.
static void PrintVerdict(IReadOnlyList<LeakSite> sites) =>
    Console.WriteLine(sites is EmptyReport<LeakSite> empty
        ? $"No leak sites ({empty.Reason.Cause}): {empty.Reason.Message}"
        : $"The code to fix, the top site's first frame: {sites[0].StackTrace.Split('\n')[0]}");
// README:runbook:end

static void Report(DirectBufferPool pool)
{
    Console.WriteLine();
    Console.WriteLine("mysql> select * from dble_memory_resident \\G   -- or, here: BufferMonitor.GetResident()");
    Console.Write(BufferReportFormatter.FormatVertical(BufferMonitor.GetResident()));

    Console.WriteLine();
    Console.WriteLine("Leak sites (BufferMonitor.GetLeakSites(type: BufferType.Normal)), biggest holders first:");
    IReadOnlyList<LeakSite> sites = BufferMonitor.GetLeakSites(type: BufferType.Normal);
    Console.Write(BufferReportFormatter.FormatSites(sites));
    PrintVerdict(sites);

    DirectBufferPoolStatistics stats = pool.GetStatistics();
    Console.WriteLine();
    Console.WriteLine($"Pool '{stats.Name}':");
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  capacity      {stats.CapacityBytes,12:N0} B"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  reserved      {stats.ReservedBytes,12:N0} B  (native slabs held)"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  in use        {stats.InUseBytes,12:N0} B  (DIRECT_MEMORY_POOL_USED)"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  high water    {stats.HighWaterBytes,12:N0} B"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  outstanding   {stats.OutstandingCount,12:N0} leases"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  total rents   {stats.TotalRents,12:N0}"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  fallbacks     {stats.FallbackCount,12:N0}"));
}
