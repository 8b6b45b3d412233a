using System.Diagnostics;

namespace OffHeapTracker.Monitoring;

/// <summary>One distinct allocation stack, shared by every record allocated from it; formatted only when first queried.</summary>
internal sealed class InternedStack
{
    private string? _text;

    public InternedStack(StackFrame[] frames, long hash)
    {
        Frames = frames;
        Hash = hash;
    }

    /// <summary>Gets the caller's frames, innermost first, with OffHeapTracker's own frames already skipped.</summary>
    public StackFrame[] Frames { get; }

    public long Hash { get; }

    /// <summary>Gets the stack as text, one frame a line; built once, on first use, so allocation never pays for it.</summary>
    public string Text => _text ??= StackFrameFormatter.Format(Frames);

    public bool SameFramesAs(StackFrame[] frames)
    {
        if (frames.Length != Frames.Length)
        {
            return false;
        }

        for (int i = 0; i < frames.Length; i++)
        {
            if (frames[i].GetILOffset() != Frames[i].GetILOffset() || !Equals(frames[i].GetMethod(), Frames[i].GetMethod()))
            {
                return false;
            }
        }

        return true;
    }
}
