// QuickStart: a pool of native buffers, the monitor switched on, and a small workload in which one code path
// forgets to return its buffers. After a second, the monitor lists what is still out and who rented it.
// Ctrl+C, SIGTERM or SIGQUIT during that second skips the report and still releases everything.
using System.Globalization;
using OffHeapTracker;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Samples;
using QuickStart;

using var signals = new ShutdownSignals();
var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "quickstart" });
BufferMonitor.Enable();

// Two client connections, each holding a read buffer for its whole life: resident by design (POOL).
var alice = new Connection(pool, "conn 1 10.0.0.5:53122");
var bob = new Connection(pool, "conn 2 10.0.0.9:40410");
var service = new OrderService(pool);

for (int request = 1; request <= 30; request++)
{
    Connection connection = request % 2 == 0 ? alice : bob;
    using (BufferMonitor.BeginContext($"{connection.Name} GET /orders/{request}"))
    {
        service.Handle(request);
    }
}

// Buffers younger than 1 s are hidden by default, as in dble: they are usually about to come back.
Console.WriteLine("Waiting past the monitor's 1 s minimum age...");
if (!signals.Wait(TimeSpan.FromSeconds(1.2)))
{
    Report(pool);
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

static void Report(DirectBufferPool pool)
{
    IReadOnlyList<ResidentBuffer> resident = BufferMonitor.GetResident();
    Console.WriteLine();
    Console.WriteLine("mysql> select * from dble_memory_resident \\G   -- or, here: BufferMonitor.GetResident()");
    Console.Write(BufferReportFormatter.FormatVertical(resident));

    int suspects = resident.Count(r => r.BufferType == BufferType.Normal);
    Console.WriteLine();
    Console.WriteLine($"{suspects} NORMAL buffers have stayed out longer than 1 s: leak suspects. The POOL ones are the connections' read buffers.");

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
