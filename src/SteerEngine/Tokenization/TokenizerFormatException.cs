namespace SteerEngine.Tokenization;

/// <summary>
/// A tokenizer file is missing, is not valid JSON, or describes something this engine cannot run.
/// The message is one line naming the file and the problem.
/// </summary>
public sealed class TokenizerFormatException : Exception
{
    public TokenizerFormatException(string message) : base(message) { }

    public TokenizerFormatException(string message, Exception inner) : base(message, inner) { }
}
