using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Tests.Monitoring.Reports;

public sealed class BufferReportFormatterTests
{
    private static ResidentBuffer Row(long id, BufferType type, string stack, string? context) => new()
    {
        Id = id,
        AliveSeconds = 29.8924,
        StackTrace = stack,
        BufferType = type,
        AllocateSize = 4096,
        ActualSize = 4096,
        AllocateTime = new DateTimeOffset(2022, 12, 7, 17, 21, 39, 901, TimeSpan.Zero).ToLocalTime(),
        Context = context,
        PoolName = "default",
        ThreadId = 12,
        Address = 0x1000,
    };

    [Fact]
    public void FormatVertical_LaysOutRowsLikeDblesG()
    {
        string text = BufferReportFormatter.FormatVertical(
        [
            Row(7, BufferType.Pool, "App.Conn.FindReadBuffer()\nApp.Conn.Register()", "<<FRONT>>"),
            Row(8, BufferType.Normal, string.Empty, null),
        ]);

        string localTime = new DateTimeOffset(2022, 12, 7, 17, 21, 39, 901, TimeSpan.Zero).ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture);
        string expected =
            "*************************** 1. row ***************************\n" +
            "           id: 7\n" +
            " alive_second: 29.892\n" +
            "   stacktrace:\n" +
            "App.Conn.FindReadBuffer()\n" +
            "App.Conn.Register()\n" +
            "\n" +
            "  buffer_type: POOL\n" +
            "allocate_size: 4096\n" +
            "  actual_size: 4096\n" +
            $"allocate_time: {localTime}\n" +
            "      context: <<FRONT>>\n" +
            "    pool_name: default\n" +
            "    thread_id: 12\n" +
            "*************************** 2. row ***************************\n" +
            "           id: 8\n" +
            " alive_second: 29.892\n" +
            "   stacktrace:\n" +
            "\n" +
            "  buffer_type: NORMAL\n" +
            "allocate_size: 4096\n" +
            "  actual_size: 4096\n" +
            $"allocate_time: {localTime}\n" +
            "      context: NULL\n" +
            "    pool_name: default\n" +
            "    thread_id: 12\n" +
            "2 rows in set\n";
        Assert.Equal(expected, text);
    }

    [Fact]
    public void FormatVertical_SaysEmptySet()
    {
        Assert.Equal("Empty set\n", BufferReportFormatter.FormatVertical([]));
        Assert.Throws<ArgumentNullException>(() => BufferReportFormatter.FormatVertical(null!));
    }

    [Fact]
    public void FormatVertical_EscapesControlCharacters_SoAContextCannotForgeRows()
    {
        const string Forged = "GET /a\n*************************** 2. row ***************************\n           id: 999";
        string text = BufferReportFormatter.FormatVertical([Row(7, BufferType.Normal, "App.Handler()", Forged) with { PoolName = "p\r\u0085\u2028" }]);

        Assert.Single(text.Split('\n'), line => line.Contains(". row ***", StringComparison.Ordinal) && line.StartsWith('*'));
        Assert.DoesNotContain("\n           id: 999", text, StringComparison.Ordinal);
        Assert.Contains(@"      context: GET /a\n*************************** 2. row ***************************\n           id: 999" + "\n", text, StringComparison.Ordinal);
        Assert.Contains(@"    pool_name: p\r\u0085\u2028" + "\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain('\r', text);
        Assert.EndsWith("1 row in set\n", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("plain context", "plain context")]
    [InlineData("tab\there", @"tab\there")]
    [InlineData(@"back\slash", @"back\\slash")]
    [InlineData("nul\0bell\a", @"nul\u0000bell\u0007")]
    [InlineData("del\u007f", @"del\u007F")]
    public void FormatVertical_EscapesEachControlCharacter_AndTheBackslash(string context, string written)
    {
        string text = BufferReportFormatter.FormatVertical([Row(1, BufferType.Normal, string.Empty, context)]);
        Assert.Contains("      context: " + written + "\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void FormatVertical_KeepsTheStackOneFrameALine_ButEscapesControlCharactersInsideAFrame()
    {
        string text = BufferReportFormatter.FormatVertical([Row(1, BufferType.Normal, "A.B()\nC.D\r\u000bE()", null)]);
        Assert.Contains("   stacktrace:\nA.B()\n" + @"C.D\r\u000BE()" + "\n\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WriteVerticalAsync_WritesWhatFormatVerticalReturns_InChunks()
    {
        ResidentBuffer[] rows = [.. Enumerable.Range(1, 3000).Select(i => Row(i, BufferType.Normal, "App.Handler()\nApp.Loop()", "conn " + i))];
        var writer = new CountingWriter();
        await BufferReportFormatter.WriteVerticalAsync(writer, rows, CancellationToken.None);

        Assert.Equal(BufferReportFormatter.FormatVertical(rows), writer.ToString());
        Assert.True(writer.Writes > 10, $"{writer.Writes} writes: the text should arrive in chunks");
    }

    [Fact]
    public async Task WriteJsonAsync_LeavesAddressesOut_UnlessAskedFor()
    {
        ResidentBuffer[] rows = [Row(1, BufferType.Normal, "A()", "c")];
        using var without = new MemoryStream();
        await BufferReportFormatter.WriteJsonAsync(without, rows, includeAddresses: false, CancellationToken.None);
        using var with = new MemoryStream();
        await BufferReportFormatter.WriteJsonAsync(with, rows, includeAddresses: true, CancellationToken.None);

        string withoutText = System.Text.Encoding.UTF8.GetString(without.ToArray());
        Assert.DoesNotContain("address", withoutText, StringComparison.Ordinal);
        Assert.Equal(rows[0] with { Address = 0 }, Assert.Single(BufferReportFormatter.ParseResidentJson(withoutText)));
        Assert.Equal(BufferReportFormatter.ToJson(rows), System.Text.Encoding.UTF8.GetString(with.ToArray()));
    }

    private sealed class CountingWriter : StringWriter
    {
        public int Writes { get; private set; }

        public override Task WriteAsync(System.Text.StringBuilder? value, CancellationToken cancellationToken = default)
        {
            Writes++;
            return base.WriteAsync(value, cancellationToken);
        }
    }
}
