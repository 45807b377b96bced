// The echo example's interface (examples/echo_service.py implements it, echo_client.py calls it).
package vbinder.example;

interface IEcho {
    // The text back, unchanged.
    String echo(String text);

    // Fire and forget: the service prints the text; the caller does not wait.
    oneway void shout(String text);
}
