using OffHeapTracker;
using OffHeapTracker.Monitoring;
using var pool = new DirectBufferPool();
BufferMonitor.Enable();
var a = pool.Rent(100);
var b = pool.Rent(5000, BufferType.Pool);
a.Dispose();
Console.WriteLine(ResidentBufferFormatter.FormatVertical(BufferMonitor.GetResident(TimeSpan.Zero)));
Console.WriteLine(pool.GetStatistics());
