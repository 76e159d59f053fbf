namespace SteerEngine.Tokenization;

/// <summary>
/// A chat template could not be parsed or rendered, or it called <c>raise_exception(msg)</c>
/// (then the message is exactly <c>msg</c>, as Hugging Face surfaces it).
/// </summary>
public sealed class ChatTemplateException : Exception
{
    public ChatTemplateException(string message) : base(message) { }
}
