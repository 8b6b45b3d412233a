using System.Diagnostics;

namespace OffHeapTracker.Monitoring;

/// <summary>One distinct captured stack, shared by every buffer allocated (or disposed) from the same code path.</summary>
/// <remarks>
/// Instances come from <see cref="StackCapture.Capture"/>, which interns them: two captures of the same frames
/// return the same object, so a monitor may group buffers by reference. The text is built on first use, so
/// capturing never pays for formatting.
/// </remarks>
public sealed class CapturedStackTrace
{
    private readonly StackFrame[] _frames;
    private string? _text;

    internal CapturedStackTrace(StackFrame[] frames, long hash)
    {
        _frames = frames;
        Hash = hash;
    }

    /// <summary>Gets the frames, innermost first, starting at the code that called into OffHeapTracker.</summary>
    public IReadOnlyList<StackFrame> Frames => _frames;

    /// <summary>Gets the stack as text, one frame a line, as <see cref="ResidentBuffer.StackTrace"/> shows it.</summary>
    public string Text => _text ??= StackFrameFormatter.Format(_frames);

    /// <summary>Gets the 64-bit hash of (method, IL offset) over the frames, the interning key.</summary>
    internal long Hash { get; }

    /// <summary>Returns <see cref="Text"/>.</summary>
    /// <returns>The stack, one frame a line.</returns>
    public override string ToString() => Text;

    internal bool SameFramesAs(StackFrame[] frames)
    {
        if (frames.Length != _frames.Length)
        {
            return false;
        }

        for (int i = 0; i < frames.Length; i++)
        {
            if (frames[i].GetILOffset() != _frames[i].GetILOffset() || !Equals(frames[i].GetMethod(), _frames[i].GetMethod()))
            {
                return false;
            }
        }

        return true;
    }
}
