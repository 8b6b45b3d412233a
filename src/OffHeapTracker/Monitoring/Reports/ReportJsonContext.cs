using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace OffHeapTracker.Monitoring;

/// <summary>The source-generated serializer behind <see cref="BufferReportFormatter"/>: snake_case names, enum values as dble writes them (<c>NORMAL</c>, <c>POOL</c>).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    Converters = [typeof(BufferTypeJsonConverter), typeof(NativeIntJsonConverter)])]
[JsonSerializable(typeof(IReadOnlyList<ResidentBuffer>))]
[JsonSerializable(typeof(IReadOnlyList<LeakSite>))]
[JsonSerializable(typeof(SnapshotComparison))]
[JsonSerializable(typeof(DirectBufferPoolStatistics))]
internal sealed partial class ReportJsonContext : JsonSerializerContext
{
    private static JsonTypeInfo<IReadOnlyList<ResidentBuffer>>? s_withoutAddresses;
    private static JsonTypeInfo<IReadOnlyList<LeakSite>>? s_withoutRawStacks;

    /// <summary>Gets resident rows' contract without the <c>address</c> field: what a diagnostics endpoint serves unless its owner asks for addresses.</summary>
    public static JsonTypeInfo<IReadOnlyList<ResidentBuffer>> ResidentBuffersWithoutAddresses => s_withoutAddresses ??= CreateWithoutAddresses();

    /// <summary>Gets leak sites' contract without the <c>raw_stacktraces</c> field: the default, since the raw stacks are several times the size of the sites.</summary>
    public static JsonTypeInfo<IReadOnlyList<LeakSite>> LeakSitesWithoutRawStacks => s_withoutRawStacks ??= CreateWithoutRawStacks();

    private static JsonTypeInfo<IReadOnlyList<LeakSite>> CreateWithoutRawStacks()
    {
        var options = new JsonSerializerOptions(Default.Options)
        {
            TypeInfoResolver = Default.WithAddedModifier(static info =>
            {
                if (info.Type == typeof(LeakSite))
                {
                    for (int i = info.Properties.Count - 1; i >= 0; i--)
                    {
                        if (info.Properties[i].Name == "raw_stacktraces")
                        {
                            info.Properties.RemoveAt(i);
                        }
                    }
                }
            }),
        };
        return (JsonTypeInfo<IReadOnlyList<LeakSite>>)options.GetTypeInfo(typeof(IReadOnlyList<LeakSite>));
    }

    private static JsonTypeInfo<IReadOnlyList<ResidentBuffer>> CreateWithoutAddresses()
    {
        var options = new JsonSerializerOptions(Default.Options)
        {
            TypeInfoResolver = Default.WithAddedModifier(static info =>
            {
                if (info.Type == typeof(ResidentBuffer))
                {
                    for (int i = info.Properties.Count - 1; i >= 0; i--)
                    {
                        if (info.Properties[i].Name == "address")
                        {
                            info.Properties.RemoveAt(i);
                        }
                    }
                }
            }),
        };
        return (JsonTypeInfo<IReadOnlyList<ResidentBuffer>>)options.GetTypeInfo(typeof(IReadOnlyList<ResidentBuffer>));
    }
}

/// <summary>Writes <see cref="BufferType"/> as <c>NORMAL</c> or <c>POOL</c>, dble's <c>buffer_type</c> values.</summary>
internal sealed class BufferTypeJsonConverter() : JsonStringEnumConverter<BufferType>(JsonNamingPolicy.SnakeCaseUpper, allowIntegerValues: false);

/// <summary>Writes native addresses as plain numbers.</summary>
internal sealed class NativeIntJsonConverter : JsonConverter<nint>
{
    public override nint Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => (nint)reader.GetInt64();

    public override void Write(Utf8JsonWriter writer, nint value, JsonSerializerOptions options) => writer.WriteNumberValue((long)value);
}
