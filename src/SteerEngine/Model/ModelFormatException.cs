namespace SteerEngine.Model;

/// <summary>
/// A model or weight file is malformed. The message is one line of the form
/// "&lt;path&gt;: &lt;problem&gt;", fit to show a user as is.
/// </summary>
public class ModelFormatException : Exception
{
    public ModelFormatException(string message) : base(message) { }

    public ModelFormatException(string message, Exception inner) : base(message, inner) { }
}
