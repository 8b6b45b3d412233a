namespace OffHeapTracker.Tests.Pool;

public sealed class PoolCountersTests
{
    [Fact]
    public void AddVolatile_SumsEveryCounter_SoANewCounterNeedsNoOtherEdit()
    {
        PoolCounters a = default;
        PoolCounters b = default;
        foreach (PoolCounter counter in Enum.GetValues<PoolCounter>().Where(c => c != PoolCounter.Count))
        {
            a.Add(counter, 1 + (int)counter);
            b.Add(counter, 100 * (1 + (int)counter));
        }

        PoolCounters sum = default;
        sum.AddVolatile(ref a);
        sum.AddVolatile(ref b);

        foreach (PoolCounter counter in Enum.GetValues<PoolCounter>().Where(c => c != PoolCounter.Count))
        {
            Assert.Equal(101 * (1 + (int)counter), sum.Get(counter));
        }
    }

    [Fact]
    public void DerivedFigures_AreDifferences_NeverNegative()
    {
        PoolCounters counters = default;
        counters.Add(PoolCounter.Rents, 5);
        counters.Add(PoolCounter.Returns, 3);
        counters.Add(PoolCounter.RentedBytes, 4096);
        counters.Add(PoolCounter.ReturnedBytes, 1024);
        counters.Add(PoolCounter.FallbackReturnedBytes, 10);
        counters.Add(PoolCounter.PoolTypeRentedBytes, 700);
        counters.Add(PoolCounter.PoolTypeReturnedBytes, 200);

        Assert.Equal(2, counters.Outstanding);
        Assert.Equal(2, counters.RentsMinusReturns);
        Assert.Equal(3072, counters.InUseBytes);
        Assert.Equal(0, counters.FallbackInUseBytes);
        Assert.Equal(500, counters.PoolTypeInUseBytes);
    }

    [Fact]
    public void RentsMinusReturns_KeepsTheSign_ForTheSettleCheck()
    {
        // Summed while a return races a rent, returns can briefly lead; Outstanding clamps, the raw difference does not.
        PoolCounters counters = default;
        counters.Add(PoolCounter.Returns, 1);

        Assert.Equal(-1, counters.RentsMinusReturns);
        Assert.Equal(0, counters.Outstanding);
    }
}
