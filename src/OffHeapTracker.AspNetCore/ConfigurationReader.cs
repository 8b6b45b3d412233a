using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace OffHeapTracker.AspNetCore;

/// <summary>Reads typed values from one configuration section, and collects every problem as a message naming the key's full path and what it may be.</summary>
/// <remarks>
/// Written by hand instead of <c>ConfigurationBinder</c>: the options' setters validate, and the binder would wrap
/// their exceptions in <see cref="System.Reflection.TargetInvocationException"/> at the first bad key; here every
/// bad key is reported at once, by path, and no reflection is involved (trimming and native AOT stay safe).
/// Keys the section does not know are errors too, so a misspelt key does not silently do nothing.
/// </remarks>
internal sealed class ConfigurationReader(IConfiguration section, List<string> errors)
{
    /// <summary>Reads a key if present and hands its value to <paramref name="set"/>; a parse failure or a setter's range error becomes a message.</summary>
    public void Int(string key, Action<int> set, string range) =>
        Read(key, range, text => int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) ? value : null, set);

    public void Long(string key, Action<long> set, string range) =>
        Read(key, range, text => long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long value) ? value : null, set);

    public void Double(string key, Action<double> set, string range) =>
        Read(key, range, text => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) ? value : null, set);

    public void Bool(string key, Action<bool> set) =>
        Read(key, "true or false", text => bool.TryParse(text, out bool value) ? value : null, set);

    /// <summary>A duration as <c>hh:mm:ss</c> (<see cref="TimeSpan"/>'s invariant format), or <c>Infinite</c> when <paramref name="allowInfinite"/>.</summary>
    public void Duration(string key, Action<TimeSpan> set, string range, bool allowInfinite = false) =>
        Read(
            key,
            range,
            text => allowInfinite && text.Equals("Infinite", StringComparison.OrdinalIgnoreCase)
                ? Timeout.InfiniteTimeSpan
                : TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out TimeSpan value) ? value : null,
            set);

    public void Enum<T>(string key, Action<T> set)
        where T : struct, Enum
    {
        string allowed = string.Join(", ", System.Enum.GetNames<T>());
        Read(key, allowed, text => System.Enum.TryParse(text, ignoreCase: true, out T value) && System.Enum.IsDefined(value) && !char.IsAsciiDigit(text[0]) ? value : null, set);
    }

    /// <summary>Reports every child of the section that is not in <paramref name="known"/>.</summary>
    public void RejectUnknown(params string[] known)
    {
        foreach (IConfigurationSection child in section.GetChildren())
        {
            if (Array.FindIndex(known, k => k.Equals(child.Key, StringComparison.OrdinalIgnoreCase)) < 0)
            {
                errors.Add($"{child.Path}: unknown key. Known keys here: {string.Join(", ", known)}.");
            }
        }
    }

    private void Read<T>(string key, string range, Func<string, T?> parse, Action<T> set)
        where T : struct
    {
        IConfigurationSection child = section.GetSection(key);
        if (child.Value is not { } text)
        {
            return;
        }

        text = text.Trim();
        if (text.Length == 0 || parse(text) is not { } value)
        {
            errors.Add($"{child.Path}: '{child.Value}' is not valid; {key} must be {range}.");
            return;
        }

        try
        {
            set(value);
        }
        catch (ArgumentException e)
        {
            // The setter's message names the property and its range; its parameter suffix adds nothing here.
            string message = e.Message;
            int suffix = message.IndexOf(" (Parameter", StringComparison.Ordinal);
            errors.Add($"{child.Path}: '{child.Value}' is out of range; {(suffix > 0 ? message[..suffix] : message)}");
        }
    }
}
